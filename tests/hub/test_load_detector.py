"""load_detector with real clients and local sources only: files, folders, URLs, zoo ids via a mirror,
the Hugging Face cache (as snapshot_download lays it out), the ModelScope cache, local registries, offline errors."""
from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import pytest
import torch

from damo_pipeline.hub import WeightsNotFoundError, load_detector, resolve_model, save_pretrained
from damo_pipeline.models import COCO_CLASSES, Detector, build_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_folder(tiny_detector: Detector, tmp_path: Path) -> Path:
    return save_pretrained(tiny_detector, tmp_path / "built" / "hub", metrics={"mAP": 11.0}, dataset="raccoon",
                           compute_profile=False)


def test_local_checkpoint_file_is_recognised(tiny_detector, tmp_path, helpers, sample_input) -> None:
    path = tmp_path / "trained.pth"
    torch.save({"model": tiny_detector.state_dict(), "epoch": 3}, path)
    model = load_detector(path)
    assert model.config.name == "damoyolo-ns" and model.num_classes == 3 and not model.training
    assert helpers.same_weights(model, tiny_detector) and helpers.same_outputs(model, tiny_detector, sample_input)


def test_local_hub_folder(hub_folder, tiny_detector, helpers) -> None:
    model = load_detector(str(hub_folder))
    assert model.class_names == helpers.class_names and helpers.same_weights(model, tiny_detector)


def test_zoo_id_with_checkpoint_of_another_class_count(tiny_detector, tmp_path, helpers) -> None:
    path = tmp_path / "finetuned.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tiny_detector.state_dict().items()}, str(path))
    model = load_detector("damoyolo-ns", checkpoint=path)
    assert model.num_classes == 3 and helpers.same_weights(model, tiny_detector)


def test_missing_checkpoint_names_the_file(tmp_path) -> None:
    with pytest.raises(WeightsNotFoundError, match="nope.pth"):
        load_detector("damoyolo-ns", checkpoint=tmp_path / "nope.pth")


def test_http_url_of_a_pth(tiny_detector, file_server, helpers) -> None:
    base, state = file_server
    buffer = io.BytesIO()
    torch.save({"model": tiny_detector.state_dict()}, buffer)
    state.files["/models/ns.pth"] = buffer.getvalue()
    model = load_detector(f"{base}/models/ns.pth")
    assert helpers.same_weights(model, tiny_detector)
    load_detector(f"{base}/models/ns.pth")
    assert len(state.requests) == 1  # cached


def test_zoo_id_downloads_through_a_mirror_then_works_offline(file_server, monkeypatch, helpers) -> None:
    base, state = file_server
    torch.manual_seed(3)
    official = build_model("damoyolo-ns")
    buffer = io.BytesIO()
    torch.save({"epoch": 300, "model": official.state_dict(), "optimizer": {}}, buffer)
    state.files["/mirror/ckpt/before_distill/damoyolo_nano_small.pth"] = buffer.getvalue()
    monkeypatch.setenv("DAMO_PIPELINE_RELEASE_MIRROR", f"{base}/mirror")
    model = load_detector("damoyolo-ns")
    assert model.class_names == list(COCO_CLASSES) and helpers.same_weights(model, official)
    resolved = resolve_model("damoyolo-ns.plain")
    assert "official release file of damoyolo-ns.plain" in resolved.source
    assert resolved.path.as_posix().endswith(
        "idstcv.oss-cn-zhangjiakou.aliyuncs.com/DAMO-YOLO/release_model/ckpt/before_distill/damoyolo_nano_small.pth")
    monkeypatch.delenv("DAMO_PIPELINE_RELEASE_MIRROR")
    monkeypatch.setenv("DAMO_PIPELINE_OFFLINE", "1")
    assert helpers.same_weights(load_detector("damoyolo-ns"), official)
    assert len(state.requests) == 1


def test_zoo_id_offline_and_uncached_explains_every_source(tmp_path) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        load_detector("damoyolo-t", local_files_only=True, cache_dir=tmp_path / "c")
    message = str(info.value)
    assert "official release file of damoyolo-t.distill" in message
    assert "damoyolo_tinynasL20_T_436.pth" in message and "not in the cache" in message
    assert "ModelScope damo/cv_tinynas_object-detection_damoyolo-t" in message  # the real client, offline
    assert "DAMO_PIPELINE_CACHE" in message and "DAMO_PIPELINE_RELEASE_MIRROR" in message
    assert "model='file.pth'" in message


def test_unknown_zoo_tag_lists_the_tags() -> None:
    with pytest.raises(ValueError, match="distill"):
        load_detector("damoyolo-t.int8")


def test_hf_cache_layout_resolves_offline(hub_folder, tiny_detector, tmp_path, monkeypatch, helpers,
                                          sample_input) -> None:
    cache = tmp_path / "hf-cache"
    snapshot = helpers.lay_out_hf_cache(cache, "acme/raccoon-ns", hub_folder, COMMIT, refs=("main", "v1"))
    assert (snapshot / "model.safetensors").is_symlink()
    model = load_detector("hf://acme/raccoon-ns", cache_dir=cache, local_files_only=True)
    assert helpers.same_outputs(model, tiny_detector, sample_input)
    assert resolve_model("hf://acme/raccoon-ns@v1", cache_dir=cache, local_files_only=True).path == snapshot
    assert resolve_model("hf://acme/raccoon-ns", revision=COMMIT, cache_dir=cache,
                         local_files_only=True).path == snapshot
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # honoured at call time, without local_files_only
    resolved = resolve_model("acme/raccoon-ns", cache_dir=cache)
    assert resolved.path == snapshot and "Hugging Face Hub acme/raccoon-ns" in resolved.source
    with pytest.raises(WeightsNotFoundError, match="v2"):
        load_detector("hf://acme/raccoon-ns@v2", cache_dir=cache)
    with pytest.raises(ValueError, match="revision"):
        resolve_model("hf://acme/raccoon-ns@v1", revision="main", cache_dir=cache)


def _official_modelscope_folder(folder: Path, model: Detector, class_names) -> None:
    """The layout of ModelScope's official DAMO-YOLO repos: .pth, configuration.json, a .py config, label map."""
    folder.mkdir(parents=True)
    torch.save({"model": model.state_dict()}, folder / "damoyolo_tinynasL18_Ns.pth")
    (folder / "configuration.json").write_text(json.dumps({
        "framework": "pytorch", "task": "image-object-detection", "pipeline": {"type": "tinynas-detection"},
        "model": {"type": "tinynas-damoyolo"}}))
    (folder / "damoyolo.py").write_text(  # must never run: it would leave a marker file
        "import pathlib\npathlib.Path(__file__).with_name('EXECUTED').write_text('ran')\nraise SystemExit(3)\n")
    label_map = {i + 1: [{"name": name, "id": i + 1}] for i, name in enumerate(class_names)}
    (folder / "label_map.pkl").write_bytes(pickle.dumps(label_map))


def test_official_modelscope_layout_from_the_modelscope_cache(tiny_detector, tmp_path, helpers) -> None:
    cache = tmp_path / "ms-cache"
    snapshot = cache / "models" / "damo--cv_tinynas_object-detection_damoyolo_ns" / "snapshots" / "master"
    _official_modelscope_folder(snapshot, tiny_detector, ["raccoon", "badger", "fox"])
    model = load_detector("ms://damo/cv_tinynas_object-detection_damoyolo_ns", cache_dir=cache,
                          local_files_only=True)
    assert model.config.name == "damoyolo-ns" and model.class_names == ["raccoon", "badger", "fox"]
    assert helpers.same_weights(model, tiny_detector)
    assert not (snapshot / "EXECUTED").exists()


def test_official_layout_never_unpickles_globals(tiny_detector, tmp_path) -> None:
    folder = tmp_path / "official"
    _official_modelscope_folder(folder, tiny_detector, ["a", "b", "c"])

    class Evil:
        def __reduce__(self):
            return (Path.write_text, (folder / "PWNED", "x"))

    (folder / "label_map.pkl").write_bytes(pickle.dumps(Evil()))
    (folder / "classes.txt").write_text("x\ny\nz\n")
    model = load_detector(folder)
    assert model.class_names == ["x", "y", "z"] and not (folder / "PWNED").exists()


def test_class_names_from_python_config_are_read_not_executed(tiny_detector, tmp_path) -> None:
    folder = tmp_path / "official"
    _official_modelscope_folder(folder, tiny_detector, ["a", "b", "c"])
    (folder / "label_map.pkl").unlink()
    (folder / "damoyolo.py").write_text("import os\nos.system('touch EXECUTED')\n"
                                        "dataset = dict(class_names=['cat', 'dog', 'emu'])\n")
    assert load_detector(folder).class_names == ["cat", "dog", "emu"]
    assert not (folder / "EXECUTED").exists()


def test_bare_repo_id_prefers_local_registry(hub_folder, tiny_detector, tmp_path, monkeypatch, helpers) -> None:
    from damo_pipeline.hub import push_to_hub

    registry = tmp_path / "registry"
    push_to_hub(hub_folder, "acme/raccoon-ns", hub=registry)
    monkeypatch.setenv("DAMO_PIPELINE_REGISTRY", str(registry))
    resolved = resolve_model("acme/raccoon-ns")
    assert resolved.path == registry / "acme" / "raccoon-ns" and "local registry" in resolved.source
    assert helpers.same_weights(load_detector("acme/raccoon-ns"), tiny_detector)


def test_bare_repo_id_offline_tries_hubs_in_configured_order(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DAMO_PIPELINE_HUB_ORDER", "ms,hf")
    with pytest.raises(WeightsNotFoundError) as info:
        load_detector("acme/missing", local_files_only=True, cache_dir=tmp_path / "c")
    message = str(info.value)
    assert message.index("ModelScope acme/missing") < message.index("Hugging Face Hub acme/missing")
    assert "offline mode" in message and "DAMO_PIPELINE_REGISTRY" in message
    monkeypatch.setenv("DAMO_PIPELINE_HUB_ORDER", "ms,github")
    with pytest.raises(ValueError, match="github"):
        load_detector("acme/missing", local_files_only=True)


def test_unrecognised_spec_lists_the_accepted_forms() -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        load_detector("yolov8n")
    assert "damoyolo-t" in str(info.value) and "org/name" in str(info.value)


def test_detector_from_pretrained_uses_the_same_resolver(hub_folder, tiny_detector, helpers, tmp_path) -> None:
    model = Detector.from_pretrained(str(hub_folder))
    assert helpers.same_weights(model, tiny_detector) and not model.training
    tiny_detector.save_pretrained(tmp_path / "mixin")  # PyTorchModelHubMixin path writes the same format
    assert sorted(p.name for p in (tmp_path / "mixin").iterdir()) == [
        "README.md", "config.json", "configuration.json", "model.safetensors"]
    assert helpers.same_weights(Detector.from_pretrained(tmp_path / "mixin"), tiny_detector)
