"""Loading official-format checkpoints safely, recognising architectures, and the mismatch errors."""
import collections

import pytest
import torch
from safetensors.torch import save_file

from damo_pipeline.models import build_model
from damo_pipeline.models.checkpoint import (
    CheckpointMismatchError,
    build_from_checkpoint,
    load_checkpoint,
    load_state_dict_file,
    recognize_checkpoint,
)


@pytest.fixture(scope="module")
def t_state_dict():
    torch.manual_seed(1)
    return build_model("damoyolo-t").state_dict()


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_official_release_layout_loads_strictly(tmp_path, t_state_dict):
    """Official files: {'epoch', 'model' (EMA state_dict), 'optimizer', 'feature_loss'}."""
    path = tmp_path / "damoyolo_tinynasL20_T_436.pth"
    torch.save({"epoch": 300, "model": t_state_dict, "optimizer": {"state": {}, "param_groups": [{"lr": 0.002}]},
                "feature_loss": None}, path)
    model = load_checkpoint(build_model("damoyolo-t"), path)
    assert _same(model.state_dict(), t_state_dict)


def test_module_prefix_plain_dict_and_safetensors(tmp_path, t_state_dict):
    prefixed = collections.OrderedDict((f"module.{k}", v) for k, v in t_state_dict.items())
    torch.save(prefixed, tmp_path / "ddp.pt")
    assert _same(load_state_dict_file(tmp_path / "ddp.pt"), t_state_dict)
    torch.save({"state_dict": t_state_dict}, tmp_path / "modelscope.pth")
    assert _same(load_state_dict_file(tmp_path / "modelscope.pth"), t_state_dict)
    save_file({k: v.contiguous() for k, v in t_state_dict.items()}, str(tmp_path / "model.safetensors"))
    model = load_checkpoint(build_model("damoyolo-t"), tmp_path / "model.safetensors")
    assert _same(model.state_dict(), t_state_dict)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_refuses_pickles_with_code(tmp_path, t_state_dict):
    path = tmp_path / "evil.pth"
    torch.save({"model": t_state_dict, "extra": _Payload()}, path)
    with pytest.raises(ValueError, match="Refused to load"):
        load_state_dict_file(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        load_state_dict_file(tmp_path / "nothere.pth")
    bad = tmp_path / "truncated.pth"
    torch.save({"model": {"w": torch.zeros(1000)}}, bad)
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.pth"):
        load_state_dict_file(bad)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="safetensors"):
        load_state_dict_file(junk)
    torch.save({"epoch": 3}, tmp_path / "nostate.pth")
    with pytest.raises(ValueError, match="no state_dict"):
        load_state_dict_file(tmp_path / "nostate.pth")


@pytest.mark.parametrize("name,num_classes", [("damoyolo-t", 80), ("damoyolo-nl", 3), ("damoyolo-m", 1)])
def test_recognises_architecture_and_class_count(name, num_classes):
    state_dict = build_model(name, num_classes=num_classes).state_dict()
    found = recognize_checkpoint(state_dict)
    assert (found.name, found.num_classes, found.legacy, found.exact) == (name, num_classes, False, True)
    model = build_from_checkpoint(state_dict)
    assert model.config.name == name and model.num_classes == num_classes


def test_recognises_legacy_81_channel_heads():
    state_dict = build_model("damoyolo-s", head={"legacy": True}).state_dict()
    assert state_dict["head.gfl_cls.0.weight"].shape[0] == 81
    found = recognize_checkpoint(state_dict)
    assert (found.name, found.num_classes, found.legacy) == ("damoyolo-s", 80, True)
    model = build_from_checkpoint(state_dict).eval()
    with torch.no_grad():
        scores, _ = model(torch.zeros(1, 3, 64, 64))
    assert scores.shape[-1] == 80


def test_mismatch_error_names_keys_and_closest_architecture(t_state_dict):
    with pytest.raises(CheckpointMismatchError) as e:
        load_checkpoint(build_model("damoyolo-s"), t_state_dict)
    message = str(e.value)
    assert "missing keys" in message and "unexpected keys" in message and "wrongly shaped keys" in message
    assert "'damoyolo-t'" in message and "build_model('damoyolo-t', num_classes=80)" in message


def test_class_count_mismatch_points_to_num_classes():
    three = build_model("damoyolo-t", num_classes=3).state_dict()
    with pytest.raises(CheckpointMismatchError) as e:
        load_checkpoint(build_model("damoyolo-t"), three)
    message = str(e.value)
    assert "head.gfl_cls.0.weight checkpoint [3, 64, 3, 3] vs model [80, 64, 3, 3]" in message
    assert "num_classes=3" in message
    assert "missing keys" not in message


def test_non_detector_and_deploy_form_checkpoints_are_refused():
    with pytest.raises(ValueError, match="not a DAMO-YOLO detector"):
        recognize_checkpoint({"fc.weight": torch.zeros(2, 2)})
    fused = build_model("damoyolo-t").fuse(fold_bn=False).state_dict()
    with pytest.raises(ValueError, match="deploy-form"):
        build_from_checkpoint(fused)


def test_custom_architecture_is_not_forced_onto_the_zoo():
    state_dict = build_model("damoyolo-t").state_dict()
    state_dict.pop("backbone.block_list.1.block_list.1.conv1.conv1.weight")
    with pytest.raises(CheckpointMismatchError, match="closest is 'damoyolo-t'"):
        build_from_checkpoint(state_dict)
