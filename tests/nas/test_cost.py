"""Analytic costs: TinyNAS's search-time count (spec/nas.md §6.2) and the deployed detector vs profile()."""
import copy

import numpy as np
import pytest
import torch

from damo_pipeline.models import BACKBONES, build_model, load_structure, profile
from damo_pipeline.nas import (CostModel, DetectorTemplate, mutate, parse_structure, search_time_cost, seed_structure,
                               space_preset, to_damo_list)
from damo_pipeline.nas.ops import backbone_ops, fuse_modules, trace_ops

OFFICIAL = {  # spec/nas.md §10: FLOPs, params, layers of the search-time network
    "tinynas_L20_k1kx": (3_996_953_600, 1_902_736, 19),
    "tinynas_L25_k1kx": (8_188_108_800, 3_053_920, 25),
    "tinynas_L35_kxkx": (32_769_024_000, 16_648_128, 35),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_search_time_cost_equals_official(name):
    cost = search_time_cost(parse_structure(load_structure(name)))
    assert (cost.flops, cost.params, cost.layers) == OFFICIAL[name]


def test_search_time_cost_of_seed_and_tutorial_record():
    seed = search_time_cost(seed_structure("k1kx"))
    assert (seed.flops, seed.params, seed.layers) == (2_107_392_000, 1_132_128, 11)
    entries = [{"class": "ConvKXBNRELU", "in": 12, "out": 32, "k": 3, "s": 1}]
    for depth, btn, c_in, c_out, s in [(1, 24, 32, 96, 2), (2, 96, 96, 96, 2), (3, 128, 96, 256, 2),
                                       (3, 144, 256, 256, 1), (3, 224, 256, 512, 2)]:
        entries.append({"class": "SuperResConvK1KX", "in": c_in, "out": c_out, "btn": btn, "k": 3, "s": s, "L": depth})
    record = search_time_cost(parse_structure(entries))
    assert (record.flops, record.params, record.layers) == (7_351_091_200, 5_831_696, 25)


def _random_structures(base, family, count, seed):
    space = space_preset(base, family)
    rng = np.random.default_rng(seed)
    structure, found = space.seed(), []
    while len(found) < count:
        structure = mutate(structure, space, rng)
        found.append(structure)
    return found


@pytest.mark.parametrize("family,base", [("res", "s"), ("csp", "m")])
def test_analytic_backbone_ops_equal_the_real_backbone(family, base):
    """The op list written without torch equals what the built, fused backbone dispatches (meta device)."""
    for structure in _random_structures(base, family, 4, seed=1) + [space_preset(base, family).seed()]:
        config = {"type": f"tinynas_{family}", "structure": to_damo_list(structure)}
        with torch.device("meta"):
            backbone = BACKBONES.build(config)
            x = torch.zeros(1, 3, 320, 320)
            fuse_modules(backbone, fold_bn=False)
            convs = [op for op in trace_ops(lambda: backbone(x)) if op.kind == "conv"]
            fuse_modules(backbone)
            others = [op for op in trace_ops(lambda: backbone(x)) if op.kind != "conv"]
        analytic = backbone_ops(structure, family, 320)
        assert [op for op in analytic if op.kind == "conv"] == convs
        assert [op for op in analytic if op.kind != "conv"] == others


@pytest.mark.parametrize("family,base", [("res", "t"), ("csp", "m")])
def test_cost_of_a_searched_structure_matches_profile(family, base):
    """Backbone part: analytic == profile() of the built backbone; whole detector: == profile(model).

    profile() counts the whole detector (2 x MACs of convolutions and matmuls, RepConv merged, BN kept), so
    the analytic backbone count is compared with profile() of ``model.backbone`` after the same merge.
    """
    structure = _random_structures(base, family, 6, seed=3)[-1]
    template = DetectorTemplate(family, base, 192)
    cost = CostModel(template).cost(structure)
    model = build_model(template.model_config(structure))
    whole = profile(model)
    assert cost.params == whole.params
    assert cost.gflops == pytest.approx(whole.gflops, rel=1e-12)
    merged = copy.deepcopy(model)
    merged.fuse(fold_bn=False)
    part = profile(merged.backbone, img_size=192, fuse=False)
    assert cost.backbone_params == part.params
    assert cost.backbone_gflops == pytest.approx(part.gflops, rel=1e-12)
    assert cost.out_channels == tuple(model.backbone.out_channels)


def test_zoo_t_costs_match_the_documented_profile():
    cost = CostModel(DetectorTemplate("res", "t", 640)).cost(parse_structure(load_structure("tinynas_L20_k1kx")))
    assert cost.params == 8_479_631  # docs/models.md
    assert cost.gflops == pytest.approx(18.009616, abs=1e-6)
