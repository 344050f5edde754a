"""The mask-vae recipe on tiny ShapesWorld data: crops, training through the one trainer, exact resume,
the exported model, the held-out scores; and the VQ objective's EMA codebook and dead-code restarts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vlmkit
from vlmkit.data.records import read_records
from vlmkit.data.shapesworld.masks import rle_decode, rle_encode
from vlmkit.errors import InputError
from vlmkit.models import MaskTokenizer
from vlmkit.processing.masks import mask_crop
from vlmkit.training.recipes import RECIPES, MaskVaeRecipe
from vlmkit.training.recipes.mask_vae import iou, object_masks
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig
from vlmkit.training.vq import MaskBatch, VqObjective, code_usage


def _recipe(data: str, eval_data: str | None = None, steps: int = 4) -> MaskVaeRecipe:
    train = TrainConfig(steps=steps, batch_size=16, warmup_steps=0, log_every=1, save_every=2, lr=2e-3)
    return MaskVaeRecipe(data=data, eval_data=eval_data, width=16, embedding_dim=8, eval_masks=20, train=train)


def test_crops_are_each_objects_mask_in_its_box(shapes_dataset):
    records = read_records(shapes_dataset / "train").records
    first = next(o for r in records for o in r.objects or [] if o.mask is not None)
    crop, box, rle = next(object_masks(str(shapes_dataset / "train")))
    assert box == list(first.box) and rle == first.mask
    assert np.array_equal(crop, mask_crop(rle_decode(first.mask), first.box))
    assert len(list(object_masks(str(shapes_dataset / "train"), limit=5))) == 5


def test_training_logs_scores_and_exports_a_loadable_tokenizer(shapes_dataset, tmp_path):
    assert RECIPES["mask-vae"] is MaskVaeRecipe
    result = run(_recipe(str(shapes_dataset / "train"), str(shapes_dataset / "val")), tmp_path / "run", device="cpu")
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [line for line in lines if "loss" in line]
    assert [line["step"] for line in steps] == [1, 2, 3, 4]
    assert {"reconstruction", "commitment", "perplexity", "codes_used", "restarts"} <= set(steps[0])
    scores = lines[-1]
    assert {"eval/iou", "eval/image_iou", "eval/perplexity", "eval/codes_used"} <= set(scores)
    assert 0.0 <= scores["eval/iou"] <= 1.0 and 1.0 <= scores["eval/codes_used"] <= 128
    loaded = vlmkit.load(result.model_dir)
    assert isinstance(loaded, MaskTokenizer)
    assert set(loaded.state_dict()) == set(result.model.state_dict())  # no EMA statistics exported
    assert torch.equal(loaded.codebook, result.model.codebook.cpu())


def test_interrupted_run_resumes_exactly(shapes_dataset, tmp_path):
    recipe = _recipe(str(shapes_dataset / "train"), steps=4)
    straight = run(recipe, tmp_path / "straight", device="cpu")
    run(recipe, tmp_path / "resumed", device="cpu", until=2)
    resumed = run(recipe, tmp_path / "resumed", device="cpu", resume=True)
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)


def test_masks_other_than_uncompressed_rle_are_one_line_errors(tmp_path):
    (tmp_path / "records.jsonl").write_text(
        json.dumps({"image": "a.png", "objects": [{"label": "x", "box": [0, 0, 4, 4], "mask": [[0, 0, 4, 0, 4, 4]]}]})
        + "\n"
    )
    with pytest.raises(InputError, match=r"a\.png: objects\[0\]\.mask: polygons"):
        _recipe(str(tmp_path)).prepare()


def test_objects_with_an_empty_box_are_skipped(tmp_path):
    full = np.zeros((8, 8), bool)
    full[2:6, 1:4] = True
    rle = rle_encode(full)
    objects = [{"label": "a", "box": [3, 3, 3, 6], "mask": rle}, {"label": "b", "box": [1, 2, 4, 6], "mask": rle}]
    (tmp_path / "records.jsonl").write_text(json.dumps({"image": "a.png", "objects": objects}) + "\n")
    [(crop, box, _)] = list(object_masks(str(tmp_path)))
    assert box == [1, 2, 4, 6] and crop.min() > 0.99


def test_ema_moves_each_used_code_to_its_latents_and_restarts_dead_ones():
    torch.manual_seed(0)
    model = MaskTokenizer(_recipe("x").model_config())
    objective = VqObjective(128, 8, commitment=0.25, decay=0.5, restart_below=0.4)
    objective.started.fill_(True)
    model.codebook.zero_()
    model.codebook[1] = 10.0  # far from every latent: never chosen
    latents = torch.randn(2, 8, 4, 4) * 0.01
    codes = torch.zeros(2, 16, dtype=torch.long)
    restarts = objective._update(model, latents, codes)
    mean = latents.permute(0, 2, 3, 1).reshape(-1, 8).mean(0)
    # code 0: usage 0.5 * 1 + 0.5 * 32, sum 0.5 * 0 + 0.5 * (32 latents): the EMA mean of its latents
    torch.testing.assert_close(model.codebook[0], 0.5 * 32 * mean / (0.5 + 0.5 * 32))
    assert restarts == 0 and objective.usage[1] == 0.5
    restarts = objective._update(model, latents, codes)  # code 1's usage falls to 0.25 < 0.4
    flat = latents.permute(0, 2, 3, 1).reshape(-1, 8)
    assert restarts == 127 and objective.usage[1] == 1.0
    assert any(torch.equal(model.codebook[1], row) for row in flat)


def test_first_batch_starts_the_codebook_at_its_latents():
    torch.manual_seed(0)
    model = MaskTokenizer(_recipe("x").model_config())
    objective = VqObjective(128, 8, 0.25, 0.99, 0.5).train()
    masks = (torch.rand(4, 64, 64) > 0.5).float()
    with torch.no_grad():
        flat = model.encoder(masks).permute(0, 2, 3, 1).reshape(-1, 8)
    objective(model, MaskBatch(masks))
    assert bool(objective.started)
    assert all(any(torch.allclose(code, row, atol=1e-2) for row in flat) for code in objective.sums)


def test_code_usage_and_iou():
    assert code_usage(torch.arange(128), 128) == pytest.approx((128.0, 128))
    assert code_usage(torch.zeros(50, dtype=torch.long), 128) == pytest.approx((1.0, 1))
    a = np.zeros((2, 4, 4), bool)
    b = a.copy()
    a[0, :2], b[0, 1:3] = True, True  # 4 shared of 12
    assert iou(a, b).tolist() == pytest.approx([1 / 3, 1.0])
