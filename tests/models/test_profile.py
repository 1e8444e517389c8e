"""profile(): params and GFLOPs with torch.utils.flop_counter against the official table."""
import json

import pytest

from damo_pipeline.models import ZOO_CARDS, build_model
from damo_pipeline.models.profile import profile

SIZES = {"Ns": "damoyolo-ns", "Nm": "damoyolo-nm", "Nl": "damoyolo-nl", "T": "damoyolo-t", "S": "damoyolo-s",
         "M": "damoyolo-m", "L": "damoyolo-l"}


@pytest.mark.parametrize("size", list(SIZES))
def test_profile_matches_official_numbers(size, spec_dir):
    manifest = json.loads((spec_dir / "manifests" / f"{size}.json").read_text())
    model = build_model(SIZES[size])
    result = profile(model)
    assert result.reparameterized and result.img_size == model.img_size
    assert result.params == manifest["num_parameters_after_reparam"]
    # Convolution FLOPs of the fused network equal the official conv-only count (thop) to 0.1%.
    assert result.gflops == pytest.approx(manifest["gflops_after_reparam_conv_only"]["total"], rel=1e-3)
    # The README table: params in millions to its 1 decimal (2 for Nano); FLOPs within BatchNorm's share.
    card = ZOO_CARDS[SIZES[size]]
    digits = 2 if size.startswith("N") else 1
    assert round(result.params_m, digits) == pytest.approx(card.params_m, abs=10 ** -digits)
    assert result.gflops == pytest.approx(card.gflops, rel=0.05)
    assert result.gflops <= card.gflops
    # profiling never changes the model
    assert not model.is_fused


def test_training_form_profile_counts_branches():
    model = build_model("damoyolo-t")
    assert profile(model, fuse=False).params == 8_875_727
    assert profile(model).params == 8_479_631


def test_profile_other_sizes_and_errors():
    model = build_model("damoyolo-t")
    small = profile(model, img_size=320)
    assert small.gflops == pytest.approx(profile(model).gflops / 4, rel=1e-3)
    with pytest.raises(ValueError, match="multiple of 32"):
        profile(model, img_size=300)
