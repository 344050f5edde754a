"""A damaged or hostile model directory is one line (CheckpointError or ConfigError) from ``vlmkit.load``,
naming the file or field, never a traceback from inside torch, json or safetensors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import vlmkit
from testkit import hf_clip, tiny_model
from vlmkit.checkpoints import save_pretrained
from vlmkit.errors import CheckpointError, ConfigError, VlmkitError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny")
    save_pretrained(tiny_model(), directory)
    return directory


@pytest.fixture
def model_dir(saved, tmp_path):
    import shutil

    return shutil.copytree(saved, tmp_path / "model")


def edit_config(directory, change) -> None:
    config = json.loads((directory / "config.json").read_text())
    change(config)
    (directory / "config.json").write_text(json.dumps(config))


def load_error(directory, kind=VlmkitError) -> str:
    with pytest.raises(kind) as error:
        vlmkit.load(directory)
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_truncated_weights_file_names_it(model_dir, keep):
    weights = model_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: int(len(data) * keep)])
    assert "model.safetensors: not a readable safetensors file" in load_error(model_dir, CheckpointError)


def test_an_integer_weight_where_a_float_is_expected_names_the_tensor(model_dir):
    tensors = load_file(model_dir / "model.safetensors")
    tensors["image_projection.weight"] = tensors["image_projection.weight"].to(torch.int64)
    save_file(tensors, model_dir / "model.safetensors")
    message = load_error(model_dir, CheckpointError)
    assert "image_projection.weight has dtype int64, expected floating-point" in message


def test_an_integer_weight_in_a_converted_checkpoint_names_the_tensor(tmp_path):
    hf_clip().save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["visual_projection.weight"] = tensors["visual_projection.weight"].to(torch.int32)
    save_file(tensors, tmp_path / "model.safetensors")
    assert "visual_projection.weight has dtype int32, expected floating-point" in load_error(tmp_path)


@pytest.mark.parametrize("value", [["dual_encoder"], {"name": "dual_encoder"}, 7])
def test_architecture_of_the_wrong_type_is_named(model_dir, value):
    edit_config(model_dir, lambda config: config.update(architecture=value))
    assert "config.json: architecture" in load_error(model_dir, ConfigError)


@pytest.mark.parametrize(
    ("tower", "field", "value"),
    [
        ("vision", "width", 10**9),
        ("text", "vocab_size", 10**13),
        ("vision", "layers", 10**6),
        ("text", "width", 10**400),
    ],
)
def test_an_absurd_size_is_refused_before_anything_is_allocated(model_dir, tower, field, value):
    edit_config(model_dir, lambda config: config[tower].update({field: value, "heads": 1}))
    message = load_error(model_dir, ConfigError)
    assert f"config.json.{tower}" in message and field in message


def test_an_absurd_size_in_a_hugging_face_config_is_refused(tmp_path):
    hf_clip().save_pretrained(tmp_path)
    edit_config(tmp_path, lambda config: config["vision_config"].update(hidden_size=10**9, num_attention_heads=1))
    assert "width=1000000000" in load_error(tmp_path, ConfigError)
    edit_config(tmp_path, lambda config: config["vision_config"].update(hidden_size=[32], num_attention_heads=4))
    assert "config.json" in load_error(tmp_path)


DEEP = "[" * 10_000 + "]" * 10_000  # json.loads raises RecursionError on it


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("config.json", DEEP),
        ("config.json", '{"architecture": "dual_encoder", "embed_dim": ' + DEEP + "}"),
        ("preprocessor.json", DEEP),
        ("model.safetensors.index.json", '{"weight_map": ' + DEEP + "}"),
    ],
)
def test_deeply_nested_json_is_one_line(model_dir, name, text):
    (model_dir / name).write_text(text)
    assert f"{name}: " in load_error(model_dir) and "nested too deeply" in load_error(model_dir)


@pytest.mark.parametrize("value", [5, ["model.safetensors"], None, ""])
def test_a_weight_map_value_that_is_not_a_file_name_is_named(model_dir, value):
    index = {"weight_map": {"logit_scale": value}}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    assert "weight_map['logit_scale'] must be a shard file name" in load_error(model_dir, CheckpointError)


@pytest.mark.parametrize("shard", ["../outside.safetensors", "sub/../../outside.safetensors", "ABSOLUTE", "C:\\x"])
def test_a_weight_map_pointing_outside_the_directory_is_refused(model_dir, shard):
    outside = model_dir.parent / "outside.safetensors"
    save_file(load_file(model_dir / "model.safetensors"), outside)  # a loadable file: only the path is wrong
    shard = str(outside) if shard == "ABSOLUTE" else shard
    tensors = load_file(model_dir / "model.safetensors")
    index = {"weight_map": dict.fromkeys(tensors, shard)}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    message = load_error(model_dir, CheckpointError)
    assert "points outside the model directory" in message and repr(shard) in message


def test_a_sharded_map_inside_the_directory_still_loads(model_dir):
    tensors = load_file(model_dir / "model.safetensors")
    (model_dir / "shards").mkdir()
    (model_dir / "model.safetensors").rename(model_dir / "shards" / "all.safetensors")
    index = {"weight_map": dict.fromkeys(tensors, "shards/all.safetensors")}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    assert vlmkit.load(model_dir).config.embed_dim == 24
