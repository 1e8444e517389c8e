"""The zoo registry, configs as data, and build_model's arguments and errors."""
import json

import pytest
import torch

from damo_pipeline.models import COCO_CLASSES, ModelConfig, build_model, get_model_config, list_models

ALL = ["damoyolo-ns", "damoyolo-nm", "damoyolo-nl", "damoyolo-t", "damoyolo-s", "damoyolo-m", "damoyolo-l"]


def test_list_models_has_all_seven_official_sizes():
    assert list_models() == ALL
    assert list_models("damoyolo-n*") == ALL[:3]


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError) as e:
        build_model("damoyolo-xl")
    assert "damoyolo-xl" in str(e.value)
    for name in ALL:
        assert name in str(e.value)


@pytest.mark.parametrize("name", ALL)
def test_native_input_size_thresholds_and_classes(name):
    config = get_model_config(name)
    nano = name in ALL[:3]
    assert config.img_size == (416 if nano else 640)
    assert config.head["reg_max"] == (7 if nano else 16)
    assert (config.score_threshold, config.iou_threshold) == ((0.03, 0.65) if nano else (0.05, 0.7))
    assert config.class_names == list(COCO_CLASSES) and config.num_classes == 80


@pytest.mark.parametrize("name", ALL)
def test_eval_forward_contract(name):
    model = build_model(name).eval()
    with torch.no_grad():
        scores, boxes = model(torch.rand(2, 3, 128, 160) * 255)
    anchors = 16 * 20 + 8 * 10 + 4 * 5
    assert scores.shape == (2, anchors, 80) and boxes.shape == (2, anchors, 4)
    assert scores.min() >= 0 and scores.max() <= 1


def test_config_round_trips_through_json(tmp_path):
    config = get_model_config("damoyolo-m")
    path = tmp_path / "config.json"
    config.to_json(path)
    again = ModelConfig.from_json(path)
    assert again == config
    a, b = build_model(config), build_model(json.loads(path.read_text()))
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    c = build_model(str(path))
    assert c.config == config


def test_build_from_config_dict_with_inline_structure():
    """A new architecture (e.g. a NAS result) is a new config, not new code."""
    config = get_model_config("damoyolo-t").to_dict()
    config["name"] = "my-searched-net"
    config["backbone"]["structure"] = [
        {"class": "ConvKXBNRELU", "in": 3, "out": 16, "k": 3, "s": 1},
        {"class": "SuperResConvK1KX", "in": 16, "out": 32, "btn": 16, "k": 3, "s": 2, "L": 1},
        {"class": "SuperResConvK1KX", "in": 32, "out": 48, "btn": 32, "k": 3, "s": 2, "L": 2},
        {"class": "SuperResConvK1KX", "in": 48, "out": 96, "btn": 48, "k": 3, "s": 2, "L": 1},
        {"class": "SuperResConvK1KX", "in": 96, "out": 96, "btn": 64, "k": 3, "s": 1, "L": 1},
        {"class": "SuperResConvK1KX", "in": 96, "out": 160, "btn": 96, "k": 3, "s": 2, "L": 1},
    ]
    config["neck"]["in_channels"] = [48, 96, 160]
    model = build_model(config).eval()
    assert model.config.name == "my-searched-net"
    with torch.no_grad():
        scores, boxes = model(torch.zeros(1, 3, 64, 64))
    assert scores.shape == (1, 64 + 16 + 4, 80)


def test_num_classes_and_class_names_overrides():
    model = build_model("damoyolo-t", num_classes=3)
    assert model.head.gfl_cls[0].weight.shape[0] == 3
    assert model.class_names == ["class_0", "class_1", "class_2"]
    model = build_model("damoyolo-ns", class_names=["rbc", "wbc", "platelets"])
    assert model.num_classes == 3 and model.class_names == ["rbc", "wbc", "platelets"]
    with pytest.raises(ValueError, match="disagrees"):
        build_model("damoyolo-t", num_classes=2, class_names=["a", "b", "c"])


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown model config field"):
        build_model("damoyolo-t", depth=3)
    with pytest.raises(ValueError, match="multiple of 32"):
        build_model("damoyolo-t", img_size=500)
    with pytest.raises(ValueError, match="Unknown backbone type"):
        build_model("damoyolo-t", backbone={"type": "resnet50"})
    with pytest.raises(ValueError, match="neck.in_channels"):
        build_model("damoyolo-t", neck={"in_channels": [1, 2, 3]})
    with pytest.raises(ValueError, match="Unknown TinyNAS structure"):
        build_model("damoyolo-t", backbone={"structure": "nope"})
    with pytest.raises(TypeError):
        build_model(42)


def test_bad_images_raise():
    model = build_model("damoyolo-t").eval()
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.zeros(1, 3, 100, 100))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        model(torch.zeros(3, 64, 64))


def test_batchnorm_hyperparameters_are_official():
    model = build_model("damoyolo-s")
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bn.eps == 1e-3 and bn.momentum == 0.03 for bn in bns)


def test_head_init_follows_upstream():
    model = build_model("damoyolo-t")
    assert torch.allclose(model.head.gfl_cls[0].bias, torch.full((80,), -4.59512), atol=1e-5)
    assert torch.equal(model.head.integral.project, torch.arange(17, dtype=torch.float32))


def test_csp_wrapper_with_different_widths_in_one_group_runs():
    """A stride-1 entry wider than the stride-2 entry it joins (possible NAS result) must build and run."""
    config = get_model_config("damoyolo-m").to_dict()
    structure = [
        {"class": "ConvKXBNRELU", "in": 3, "out": 16, "k": 3, "s": 1},
        {"class": "SuperResConvKXKX", "in": 16, "out": 32, "btn": 16, "k": 3, "s": 2, "L": 2},
        {"class": "SuperResConvKXKX", "in": 32, "out": 64, "btn": 32, "k": 3, "s": 2, "L": 2},
        {"class": "SuperResConvKXKX", "in": 64, "out": 96, "btn": 48, "k": 3, "s": 2, "L": 2},
        {"class": "SuperResConvKXKX", "in": 96, "out": 128, "btn": 64, "k": 3, "s": 1, "L": 2},
        {"class": "SuperResConvKXKX", "in": 128, "out": 160, "btn": 64, "k": 3, "s": 2, "L": 2},
    ]
    config["backbone"]["structure"] = structure
    config["neck"]["in_channels"] = [64, 128, 160]
    model = build_model(config).eval()
    with torch.no_grad():
        scores, _ = model(torch.zeros(1, 3, 64, 64))
    assert scores.shape == (1, 64 + 16 + 4, 80)
