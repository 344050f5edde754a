"""The scene-size curriculum: stages by step, draws by seed, exact resume through the trainer, bad options."""

from __future__ import annotations

import pytest
import torch

from vlmkit.data.records import Record
from vlmkit.errors import ConfigError, InputError
from vlmkit.training.curriculum import ObjectCurriculum, object_count
from vlmkit.training.metrics import read_metrics
from vlmkit.training.recipes import InstructRecipe, LmRecipe
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig

SIZES = [1, 2, 3, 1, 2, 3, 3, 2, 1, 3, 2, 3]  # four stages' worth of pools: sizes 1 (3), <=2 (7), <=3 (12)


def _draws(curriculum: ObjectCurriculum, micro_steps: range, micro_batch: int = 2) -> list[list[int]]:
    return [curriculum.items(m, micro_batch, 0, 1) for m in micro_steps]


def test_stages_grow_with_the_step_and_the_last_continues():
    curriculum = ObjectCurriculum(SIZES, steps=6, seed=0)
    assert [curriculum.limit(step) for step in range(9)] == [1, 1, 2, 2, 3, 3, 3, 3, 3]
    for step, items in enumerate(_draws(curriculum, range(9))):
        assert all(SIZES[i] <= curriculum.limit(step) for i in items), (step, items)
    assert {SIZES[i] for items in _draws(curriculum, range(2)) for i in items} == {1}


def test_a_stage_draws_its_whole_pool_before_repeating():
    curriculum = ObjectCurriculum(SIZES, steps=3, seed=0)  # stage 1 (<= 2 objects: 7 records) is step 1 only
    drawn = curriculum.items(1, 14, 0, 1)  # two epochs of that pool in one micro-batch
    pool = sorted(i for i, size in enumerate(SIZES) if size <= 2)
    assert sorted(drawn[:7]) == pool and sorted(drawn[7:]) == pool
    assert drawn[:7] != drawn[7:]  # each pool epoch has its own permutation


def test_draws_are_fixed_by_the_seed():
    first = _draws(ObjectCurriculum(SIZES, steps=6, seed=3), range(8))
    assert first == _draws(ObjectCurriculum(SIZES, steps=6, seed=3), range(8))
    assert first != _draws(ObjectCurriculum(SIZES, steps=6, seed=4), range(8))


def test_a_micro_batch_is_a_function_of_its_position_alone():
    """What a resumed run asks for first equals what the uninterrupted run drew there, ranks included."""
    straight = ObjectCurriculum(SIZES, steps=4, seed=0, grad_accum=2)
    sequence = [straight.items(m, 2, rank, 2) for m in range(12) for rank in range(2)]
    resumed = ObjectCurriculum(SIZES, steps=4, seed=0, grad_accum=2)
    assert [resumed.items(m, 2, rank, 2) for m in range(7, 12) for rank in range(2)] == sequence[14:]
    # grad_accum: both micro-batches of an optimizer step are in its stage
    assert straight.stage(3 // 2) == straight.stage(2 // 2) == 0 and straight.stage(4 // 2) == 1
    assert {SIZES[i] for items in sequence[:4] for i in items} == {1}


def test_bad_schedules_are_refused():
    with pytest.raises(ConfigError, match="curriculum_steps"):
        ObjectCurriculum(SIZES, steps=0, seed=0)
    with pytest.raises(InputError, match="no record has objects"):
        ObjectCurriculum.of_records([Record(image="a.png")], steps=3, seed=0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"curriculum": "shapes"}, "curriculum: expected one of objects, got 'shapes'"),
        ({"curriculum_steps": 5}, "curriculum_steps: a number of steps >= 0, with a curriculum set"),
        ({"curriculum": "objects", "curriculum_steps": -1}, "curriculum_steps"),
    ],
)
def test_bad_options_say_so_in_one_line(settings, message):
    recipe = InstructRecipe(data="d", init_from="m", **settings)
    with pytest.raises(ConfigError, match=message) as error:
        recipe.validate("InstructRecipe")
    assert "\n" not in str(error.value)


def _lm(data, **train) -> LmRecipe:
    settings = dict(steps=6, batch_size=16, grad_accum=2, lr=1e-3, warmup_steps=1, log_every=1, keep_last=2)
    settings.update(train)
    return LmRecipe(
        data=str(data / "train"),
        vocab_size=300,
        curriculum="objects",
        curriculum_steps=4,
        train=TrainConfig(**settings),
    )


def test_the_run_follows_the_schedule(shapes_dataset):
    """The batches a run's first steps see hold single-object scenes only (micro-batch 8, 64 records)."""
    batches = _lm(shapes_dataset).prepare().batches
    records = batches.records
    first = [batches.batch(0, index, 8, 0, 1) for index in range(4)]  # steps 0 and 1: the first stage
    counts = {object_count(records[i]) for m in range(4) for i in batches.curriculum.items(m, 8, 0, 1)}
    assert counts == {1}
    assert all(b.input_ids.shape[0] == 8 for b in first)
    late = {object_count(records[i]) for m in range(8, 12) for i in batches.curriculum.items(m, 8, 0, 1)}
    assert max(late) == max(object_count(r) for r in records) > 1


def test_interrupted_curriculum_run_resumes_exactly(shapes_dataset, tmp_path):
    recipe = _lm(shapes_dataset)  # 6 steps of 2 micro-batches of 8 from 64 records: crosses an epoch
    torch.manual_seed(0)
    straight = run(recipe, tmp_path / "straight", device="cpu")
    torch.manual_seed(0)
    run(recipe, tmp_path / "resumed", device="cpu", until=3)
    torch.manual_seed(0)
    resumed = run(recipe, tmp_path / "resumed", device="cpu", resume=True)

    def losses(path):
        return [(line["step"], line["loss"]) for line in read_metrics(path / "metrics.jsonl") if "loss" in line]

    assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
