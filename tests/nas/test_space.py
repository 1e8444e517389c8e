"""Search space: structure I/O, presets, and the mutation rules keeping every child valid."""
import numpy as np
import pytest

from damo_pipeline.models import list_structures, load_structure
from damo_pipeline.nas import (SearchSpace, check_structure, count_layers, mutate, parse_key, parse_structure,
                               seed_structure, space_preset, structure_key, to_damo_list)
from damo_pipeline.nas.space import round8


def _walk(space, children, seed):
    """``children`` children, each of a parent drawn from everything accepted so far (like the search)."""
    rng = np.random.default_rng(seed)
    pool = [space.seed()]
    out = []
    for _ in range(children):
        child = mutate(pool[int(rng.integers(len(pool)))], space, rng)
        out.append(child)
        if count_layers(child) <= space.max_layers:
            pool.append(child)
    return out


def test_round8_is_tinynas_smart_round():
    assert [round8(x) for x in (0.4, 4, 12, 20, 28, 100, 131.9)] == [8, 8, 16, 16, 32, 96, 128]


@pytest.mark.parametrize("name", list_structures())
def test_structures_round_trip(name):
    structure = parse_structure(load_structure(name))
    assert parse_structure(to_damo_list(structure)) == structure
    assert parse_key(structure_key(structure)) == structure


def test_bad_structures_raise_clear_errors():
    with pytest.raises(TypeError, match="list of dicts"):
        parse_structure("tinynas_L20_k1kx")
    with pytest.raises(ValueError, match="lacks keys"):
        parse_structure([{"class": "ConvKXBNRELU", "in": 3, "out": 8, "k": 3}, {"class": "SuperResConvK1KX"}])
    entries = to_damo_list(seed_structure())
    entries[2]["in"] = 40
    with pytest.raises(ValueError, match="must equal the previous 'out'"):
        parse_structure(entries)
    with pytest.raises(ValueError, match="not a structure key"):
        parse_key("resnet50")
    with pytest.raises(ValueError, match="Unknown search-space preset"):
        space_preset("xl")


@pytest.mark.parametrize("base", ["t", "s", "m", "l"])
def test_presets_and_seed(base):
    space = space_preset(base)
    assert check_structure(space.seed(), space) == []
    assert space.depth_cap(1) == 2
    assert space.depth_cap(3) == {"t": 2, "s": 3, "m": 4, "l": 5}[base]


def test_shipped_structures_against_their_spaces():
    assert check_structure(parse_structure(load_structure("tinynas_L20_k1kx")), space_preset("t")) == []
    assert check_structure(parse_structure(load_structure("tinynas_L35_kxkx")), space_preset("m")) == []
    # spec/nas.md §10: the shipped S has L=5 in block 2, beyond the published space's cap of 3.
    assert check_structure(parse_structure(load_structure("tinynas_L25_k1kx")), space_preset("s")) == [
        "block 2 L=5 outside [1, 3]"]


@pytest.mark.parametrize("base,family", [("t", "res"), ("s", "res"), ("m", "csp")])
def test_mutation_keeps_children_valid(base, family):
    """spec/nas.md §14.5 on 10^4 children: every child within the layer budget obeys all hard rules."""
    space = space_preset(base, family)
    children = _walk(space, 10_000, seed=0)
    within = [c for c in children if count_layers(c) <= space.max_layers]
    assert len(within) > 9_000
    for child in within:
        assert check_structure(child, space) == [], structure_key(child)
    # every block is mutable, the last one included (the TinyNAS v2 bug is fixed)
    seed = space.seed()
    for i in range(len(seed)):
        assert any(c[i].c_out != seed[i].c_out for c in within), f"block {i} out never changed"
    for i in range(1, len(seed)):
        assert any(c[i].L != seed[i].L for c in within), f"block {i} depth never changed"
        assert any(c[i].btn != seed[i].btn for c in within), f"block {i} btn never changed"


def test_official_policy_reproduces_soft_violations_and_the_v2_bug():
    official = space_preset("s", btn_policy="official")
    children = _walk(official, 5_000, seed=1)
    clean = space_preset("s")
    soft = [c for c in children if count_layers(c) <= official.max_layers and check_structure(c, clean)]
    assert soft and all(check_structure(c, official) == [] for c in soft)
    frozen = space_preset("s", mutate_last_block=False)
    seed = frozen.seed()
    for child in _walk(frozen, 3_000, seed=2):
        assert (child[5].c_out, child[5].L) == (seed[5].c_out, seed[5].L)


def test_csp_space_ties_blocks_3_and_4():
    space = space_preset("m", "csp")
    assert space.seed()[3].c_out == space.seed()[4].c_out
    for child in _walk(space, 2_000, seed=3):
        assert child[3].c_out == child[4].c_out
    assert space_preset("m", "res").tied_widths == []


def test_search_space_round_trips_and_validates():
    space = space_preset("t", max_layers=30, channel_ranges={2: [64, 128]})
    assert SearchSpace.from_dict(space.to_dict()) == space
    with pytest.raises(ValueError, match="max_layers"):
        SearchSpace(max_layers=5)
    with pytest.raises(ValueError, match="Unknown search-space keys"):
        SearchSpace.from_dict({"depth": 3})
