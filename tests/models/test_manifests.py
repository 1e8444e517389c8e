"""state_dict keys, order and shapes identical to the official training-form checkpoints."""
import json

import pytest

from damo_pipeline.models import build_model

SIZES = {"Ns": "damoyolo-ns", "Nm": "damoyolo-nm", "Nl": "damoyolo-nl", "T": "damoyolo-t", "S": "damoyolo-s",
         "M": "damoyolo-m", "L": "damoyolo-l"}


@pytest.mark.parametrize("size", list(SIZES))
def test_state_dict_matches_manifest(spec_dir, size):
    manifest = json.loads((spec_dir / "manifests" / f"{size}.json").read_text())
    expected = [(key, list(shape)) for key, shape, _dtype in manifest["state_dict"]]
    model = build_model(SIZES[size])
    ours = [(key, list(t.shape)) for key, t in model.state_dict().items()]
    assert ours == expected
    assert len(ours) == manifest["num_state_dict_entries"]
    assert sum(p.numel() for p in model.parameters()) == manifest["num_parameters"]
    dtypes = {key: dtype for key, _shape, dtype in manifest["state_dict"]}
    for key, tensor in model.state_dict().items():
        assert str(tensor.dtype).replace("torch.", "") == dtypes[key], key
