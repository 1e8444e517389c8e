"""MAE-NAS search space for DAMO-YOLO backbones: structures, presets, mutation rules and validity.

A *structure* is a stem plus five residual super-blocks (the fixed DAMO-YOLO skeleton, strides
1, 2, 2, 2, 1, 2). Only widths (``out``), bottleneck widths (``btn``) and depths (``L``) change during a
search; the kernel is always 3. Structures are immutable tuples of :class:`Block`, so they hash, compare and
serve as cache keys. The mutation operator follows the official TinyNAS v1 rules (``spec/nas.md`` §5) with
one documented clean-up (``btn_policy="clean"``, the default): every bottleneck stays within
``[round8(out / 10), out]``.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

STEM = "stem"
BLOCK_TYPES = ("k1kx", "kxkx")
SKELETON_STRIDES = (1, 2, 2, 2, 1, 2)
"""Strides of stem and the five super-blocks; stages close at blocks 0, 1, 2, 4, 5 (strides 2..32)."""

# Class names as DAMO-YOLO's structure files spell them (TinyNAS v1) and as TinyNAS v2 writes them.
_STEM_CLASSES = ("ConvKXBNRELU",)
_CLASS_OF_TYPE = {"k1kx": "SuperResConvK1KX", "kxkx": "SuperResConvKXKX"}
_TYPE_OF_CLASS = {"SuperResConvK1KX": "k1kx", "SuperResK1KX": "k1kx",
                  "SuperResConvKXKX": "kxkx", "SuperResKXKX": "kxkx"}


@dataclass(frozen=True)
class Block:
    """One entry of a structure.

    Attributes:
        kind: ``"stem"`` (conv k x k + BN + act; a Focus stem when deployed), ``"k1kx"`` or ``"kxkx"``
            (a super-block of ``L`` residual units whose first conv is 1x1 or k x k).
        c_in: input channels (a super-block's ``in`` always equals the previous block's ``out``; the stem's
            is 3 at deploy time, 12 in the search-time network).
        c_out: output channels.
        k: kernel of the k x k convs.
        s: stride of the first unit (1 or 2).
        L: number of residual units (0 for the stem).
        btn: bottleneck width of every unit (0 for the stem).
    """

    kind: str
    c_in: int
    c_out: int
    k: int = 3
    s: int = 1
    L: int = 0
    btn: int = 0


Structure = Tuple[Block, ...]


def round8(x: float) -> int:
    """TinyNAS's "smart round" to base 8: ``max(8, 8 * round(x / 8))`` (Python rounds half to even)."""
    return max(8, 8 * int(round(x / 8)))


def parse_structure(entries: Sequence[Mapping[str, Any]]) -> Structure:
    """A :data:`Structure` from a DAMO-YOLO / TinyNAS list of dicts (v1 or v2 class names).

    ``nbitsA``/``nbitsW`` and ``inner_class`` keys are ignored (the quantisation metadata in the shipped
    files must not enter the score, ``spec/nas.md`` §4.3).

    Raises:
        ValueError: an entry lacks a key, has an unknown class, or the widths do not chain.
        TypeError: ``entries`` is not a list of dicts.
    """
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise TypeError(f"A structure must be a list of dicts, got {type(entries).__name__}.")
    if len(entries) < 2:
        raise ValueError(f"A structure needs a stem and at least one super-block; got {len(entries)} entries.")
    blocks: List[Block] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise TypeError(f"Structure entry {i} must be a dict, got {type(entry).__name__}.")
        cls = entry.get("class")
        required = ("class", "in", "out", "k") if i == 0 else ("class", "in", "out", "k", "s", "L", "btn")
        missing = [key for key in required if key not in entry]
        if missing:
            raise ValueError(f"Structure entry {i} ({dict(entry)!r}) lacks keys {missing}.")
        if i == 0:
            if cls not in _STEM_CLASSES:
                raise ValueError(f"Structure entry 0 must be the stem (class {_STEM_CLASSES[0]}), got {cls!r}.")
            blocks.append(Block(STEM, int(entry["in"]), int(entry["out"]), int(entry["k"]), int(entry.get("s", 1))))
            continue
        if cls not in _TYPE_OF_CLASS:
            raise ValueError(f"Structure entry {i} has class {cls!r}; expected one of {sorted(_TYPE_OF_CLASS)}.")
        blocks.append(Block(_TYPE_OF_CLASS[cls], int(entry["in"]), int(entry["out"]), int(entry["k"]),
                            int(entry["s"]), int(entry["L"]), int(entry["btn"])))
    for i in range(1, len(blocks)):
        if blocks[i].c_in != blocks[i - 1].c_out:
            raise ValueError(f"Structure entry {i} has in={blocks[i].c_in} but entry {i - 1} has "
                             f"out={blocks[i - 1].c_out}; each block's 'in' must equal the previous 'out'.")
    return tuple(blocks)


def to_damo_list(structure: Structure, stem_in_channels: int = 3) -> List[Dict[str, Any]]:
    """The DAMO-YOLO structure list (``backbone.structure``): v1 class names, stem ``in`` = 3, no nbits keys."""
    entries: List[Dict[str, Any]] = []
    for i, block in enumerate(structure):
        if block.kind == STEM:
            entries.append({"class": _STEM_CLASSES[0], "in": stem_in_channels if i == 0 else block.c_in,
                            "out": block.c_out, "k": block.k, "s": block.s})
        else:
            entries.append({"class": _CLASS_OF_TYPE[block.kind], "in": block.c_in, "out": block.c_out,
                            "btn": block.btn, "k": block.k, "s": block.s, "L": block.L})
    return entries


def structure_key(structure: Structure) -> str:
    """Canonical, human-readable key: ``kind:in-out/btn xL sS`` per block (the stem's ``in`` is omitted).

    Two structures have the same key exactly when they build the same network, so the key is the search's
    cache key and the population's de-duplication key.
    """
    parts = []
    for block in structure:
        if block.kind == STEM:
            parts.append(f"stem:{block.c_out}k{block.k}")
        else:
            parts.append(f"{block.kind}:{block.c_in}-{block.c_out}/{block.btn}x{block.L}s{block.s}k{block.k}")
    return "|".join(parts)


_KEY_BLOCK = re.compile(r"(k1kx|kxkx):(\d+)-(\d+)/(\d+)x(\d+)s(\d+)k(\d+)")
_KEY_STEM = re.compile(r"stem:(\d+)k(\d+)")


def parse_key(key: str) -> Structure:
    """The structure a :func:`structure_key` describes (deploy form, stem ``in`` = 3).

    Raises:
        ValueError: ``key`` is not a structure key.
    """
    parts = key.split("|")
    stem = _KEY_STEM.fullmatch(parts[0]) if parts else None
    if stem is None:
        raise ValueError(f"{key!r} is not a structure key (expected 'stem:<out>k<k>|<type>:<in>-<out>/<btn>x<L>s<s>k<k>|...').")
    blocks = [Block(STEM, 3, int(stem.group(1)), int(stem.group(2)), 1)]
    for part in parts[1:]:
        match = _KEY_BLOCK.fullmatch(part)
        if match is None:
            raise ValueError(f"{part!r} in {key!r} is not a super-block key '<type>:<in>-<out>/<btn>x<L>s<s>k<k>'.")
        kind, c_in, c_out, btn, depth, s, k = match.groups()
        blocks.append(Block(kind, int(c_in), int(c_out), int(k), int(s), int(depth), int(btn)))
    return tuple(blocks)


def count_layers(structure: Structure) -> int:
    """TinyNAS's layer count: 1 for the stem plus 2 per residual unit (projections not counted)."""
    return sum(1 if b.kind == STEM else 2 * b.L for b in structure)


def seed_structure(block_type: str = "k1kx", tied_widths: Sequence[Sequence[int]] = ()) -> Structure:
    """The official initial structure (``spec/nas.md`` §5.1), deploy form (stem ``in`` = 3).

    stem 32; 32->48 (btn 32); 48->96 (btn 48); 96->96 (btn 96); 96->192 (s1, btn 96); 192->384 (btn 192);
    every super-block L=1, k=3. With ``tied_widths`` (CSP spaces) each tied group takes the ``out`` of its
    last block (block 3 becomes 96->192).
    """
    if block_type not in BLOCK_TYPES:
        raise ValueError(f"Unknown block type {block_type!r}; choose one of {BLOCK_TYPES}.")
    outs = [32, 48, 96, 96, 192, 384]
    for group in tied_widths:
        for i in group:
            outs[i] = outs[max(group)]
    btns = [0, 32, 48, 96, 96, 192]
    blocks = [Block(STEM, 3, outs[0], 3, 1)]
    blocks += [Block(block_type, outs[i - 1], outs[i], 3, SKELETON_STRIDES[i], 1, btns[i]) for i in range(1, 6)]
    return tuple(blocks)


@dataclass
class SearchSpace:
    """What the mutation operator may change, and the hard limits every structure obeys.

    Attributes:
        block_type: ``"k1kx"`` (T, S) or ``"kxkx"`` (M, L).
        max_layers: layer budget (:func:`count_layers`); also sets the depth cap of blocks 2..5 to
            ``(max_layers // 2) // 4`` as the official operator does.
        channel_ranges: ``{block index: [lo, hi]}`` clamps applied when that block's ``out`` mutates.
        first_block_max_depth: depth cap of block 1.
        channel_multipliers: factors drawn for ``out``/``btn`` mutations.
        depth_deltas: steps drawn for ``L`` mutations.
        max_channels: global width cap.
        stem_max_channels: cap of the stem width.
        btn_floor_ratio: a bottleneck is never below ``round8(out / btn_floor_ratio)`` after its block mutates.
        blocks_per_child: block mutations per child.
        btn_policy: ``"clean"`` re-caps every bottleneck into ``[round8(out / ratio), out]`` after each
            change; ``"official"`` reproduces TinyNAS, which lets a btn exceed its out or fall below the floor
            through a neighbour's mutation.
        mutate_last_block: ``False`` reproduces the TinyNAS v2 bug that never mutates block 5.
        tied_widths: groups of consecutive super-blocks that always share one ``out``. CSP spaces tie blocks
            3 and 4, which one CSP wrapper merges: ``damo_pipeline``'s TinyNAS_csp (like the official M and L)
            needs them equally wide.
    """

    block_type: str = "k1kx"
    max_layers: int = 20
    channel_ranges: Dict[int, List[int]] = field(default_factory=dict)
    first_block_max_depth: int = 2
    channel_multipliers: Tuple[float, ...] = (2.0, 1.5, 1.25, 0.8, 0.6, 0.5)
    depth_deltas: Tuple[int, ...] = (-2, -1, 1, 2)
    max_channels: int = 2048
    stem_max_channels: int = 32
    btn_floor_ratio: int = 10
    blocks_per_child: int = 2
    btn_policy: str = "clean"
    mutate_last_block: bool = True
    tied_widths: List[List[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.block_type not in BLOCK_TYPES:
            raise ValueError(f"block_type must be one of {BLOCK_TYPES}, got {self.block_type!r}.")
        if self.btn_policy not in ("clean", "official"):
            raise ValueError(f"btn_policy must be 'clean' or 'official', got {self.btn_policy!r}.")
        if not isinstance(self.max_layers, int) or self.max_layers < count_layers(seed_structure(self.block_type)):
            raise ValueError(f"max_layers must be an int >= {count_layers(seed_structure(self.block_type))} "
                             f"(the seed structure's layers), got {self.max_layers!r}.")
        self.channel_ranges = {int(k): [int(v[0]), int(v[1])] for k, v in self.channel_ranges.items()}
        for idx, (lo, hi) in self.channel_ranges.items():
            if not 1 <= idx < len(SKELETON_STRIDES) or lo > hi:
                raise ValueError(f"channel_ranges[{idx}] = [{lo}, {hi}] is not a valid range of a super-block 1..5.")
        self.tied_widths = [sorted(int(i) for i in group) for group in self.tied_widths]
        for group in self.tied_widths:
            if len(group) < 2 or group != list(range(group[0], group[-1] + 1)) or group[0] < 1 \
                    or group[-1] >= len(SKELETON_STRIDES):
                raise ValueError(f"tied_widths group {group} must list two or more consecutive super-blocks (1..5).")
        self.channel_multipliers = tuple(float(m) for m in self.channel_multipliers)
        self.depth_deltas = tuple(int(d) for d in self.depth_deltas)

    def depth_cap(self, index: int) -> int:
        """Largest ``L`` of super-block ``index`` (1..5)."""
        if index == 1:
            return self.first_block_max_depth
        return max(1, (self.max_layers // 2) // (len(SKELETON_STRIDES) - 2))

    def seed(self) -> Structure:
        """The seed structure of this space (:func:`seed_structure`)."""
        return seed_structure(self.block_type, self.tied_widths)

    def tie_group(self, index: int) -> List[int]:
        """The blocks sharing ``out`` with block ``index`` (just ``[index]`` when it is not tied)."""
        for group in self.tied_widths:
            if index in group:
                return list(group)
        return [index]

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["channel_ranges"] = {str(k): list(v) for k, v in self.channel_ranges.items()}
        data["channel_multipliers"] = list(self.channel_multipliers)
        data["depth_deltas"] = list(self.depth_deltas)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SearchSpace":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown search-space keys {unknown}; known: {sorted(known)}.")
        values = dict(data)
        if "channel_ranges" in values:
            values["channel_ranges"] = {int(k): list(v) for k, v in values["channel_ranges"].items()}
        return cls(**values)


_S_RANGES = {2: [64, 128], 4: [128, 256], 5: [256, 512]}
SPACE_PRESETS: Dict[str, SearchSpace] = {
    "t": SearchSpace("k1kx", 20, {2: [64, 96], 4: [128, 192], 5: [256, 384]}),
    "s": SearchSpace("k1kx", 25, dict(_S_RANGES)),
    "m": SearchSpace("kxkx", 35, dict(_S_RANGES), tied_widths=[[3, 4]]),
    "l": SearchSpace("kxkx", 45, dict(_S_RANGES), tied_widths=[[3, 4]]),
}
"""The official DAMO-YOLO search spaces (T, S, M; ``spec/nas.md`` §8). ``l`` is ours: no search config was
published for L; it keeps M's ranges with L's 45-layer budget."""


FAMILY_BLOCK_TYPE = {"res": "k1kx", "csp": "kxkx"}
FAMILY_TIED_WIDTHS = {"res": [], "csp": [[3, 4]]}


def space_preset(base: str, family: Optional[str] = None, **overrides: Any) -> SearchSpace:
    """A fresh copy of the preset for base size ``base`` (``t``, ``s``, ``m``, ``l``) with fields replaced.

    Args:
        base: preset name (channel ranges, layer budget).
        family: ``"res"`` or ``"csp"``: sets the block type (k1kx / kxkx) and, for CSP, ties blocks 3 and 4.
            Default: the preset's own (T, S res; M, L csp).
        **overrides: any :class:`SearchSpace` field.

    Raises:
        ValueError: unknown base, family or field.
    """
    key = base.strip().lower().replace("damoyolo-", "")
    if key not in SPACE_PRESETS:
        raise ValueError(f"Unknown search-space preset {base!r}; choose one of {sorted(SPACE_PRESETS)}.")
    data = SPACE_PRESETS[key].to_dict()
    if family is not None:
        if family not in FAMILY_BLOCK_TYPE:
            raise ValueError(f"Unknown family {family!r}; choose one of {sorted(FAMILY_BLOCK_TYPE)}.")
        data["block_type"] = FAMILY_BLOCK_TYPE[family]
        data["tied_widths"] = [list(g) for g in FAMILY_TIED_WIDTHS[family]]
    data.update(overrides)
    return SearchSpace.from_dict(data)


def check_structure(structure: Structure, space: SearchSpace) -> List[str]:
    """Every way ``structure`` breaks the space's hard rules (empty list: valid).

    Checked: the skeleton (stem + 5 super-blocks of ``space.block_type``, strides 1, 2, 2, 2, 1, 2, k=3),
    width chaining, non-decreasing widths, multiples of 8, the stem cap, channel ranges, depth caps, the layer
    budget and, with ``btn_policy="clean"``, bottlenecks within ``[round8(out / ratio), out]``.
    """
    problems: List[str] = []
    if len(structure) != len(SKELETON_STRIDES):
        return [f"expected {len(SKELETON_STRIDES)} entries (stem + 5 super-blocks), got {len(structure)}"]
    for i, block in enumerate(structure):
        expected_kind = STEM if i == 0 else space.block_type
        if block.kind != expected_kind:
            problems.append(f"block {i} is {block.kind}, expected {expected_kind}")
        if block.s != SKELETON_STRIDES[i]:
            problems.append(f"block {i} has stride {block.s}, the skeleton needs {SKELETON_STRIDES[i]}")
        if block.k != 3:
            problems.append(f"block {i} has kernel {block.k}; the DAMO-YOLO space uses 3")
        if block.c_out % 8 or block.c_out < 8 or block.c_out > space.max_channels:
            problems.append(f"block {i} out={block.c_out} is not a multiple of 8 in [8, {space.max_channels}]")
        if i == 0:
            if block.c_out > space.stem_max_channels:
                problems.append(f"stem out={block.c_out} exceeds {space.stem_max_channels}")
            continue
        prev = structure[i - 1]
        if block.c_in != prev.c_out:
            problems.append(f"block {i} in={block.c_in} differs from block {i - 1} out={prev.c_out}")
        if block.c_out < prev.c_out:
            problems.append(f"block {i} out={block.c_out} is narrower than block {i - 1} out={prev.c_out}")
        if not 1 <= block.L <= space.depth_cap(i):
            problems.append(f"block {i} L={block.L} outside [1, {space.depth_cap(i)}]")
        if i in space.channel_ranges:
            lo, hi = space.channel_ranges[i]
            if not lo <= block.c_out <= hi:
                problems.append(f"block {i} out={block.c_out} outside its range [{lo}, {hi}]")
        if block.btn < 8 or block.btn % 8 or block.btn > space.max_channels:
            problems.append(f"block {i} btn={block.btn} is not a multiple of 8 in [8, {space.max_channels}]")
        if space.btn_policy == "clean" and not _btn_floor(block, space) <= block.btn <= block.c_out:
            problems.append(f"block {i} btn={block.btn} outside [{_btn_floor(block, space)}, {block.c_out}]")
    for group in space.tied_widths:
        widths = {structure[i].c_out for i in group}
        if len(widths) > 1:
            problems.append(f"blocks {group} are tied but have different out widths {sorted(widths)}")
    layers = count_layers(structure)
    if layers > space.max_layers:
        problems.append(f"{layers} layers exceed the layer budget {space.max_layers}")
    return problems


def _btn_floor(block: Block, space: SearchSpace) -> int:
    return round8(block.c_out / space.btn_floor_ratio)


def _clean_btns(blocks: List[Block], space: SearchSpace) -> None:
    for i, block in enumerate(blocks):
        if block.kind != STEM:
            btn = min(max(block.btn, _btn_floor(block, space)), block.c_out)
            if btn != block.btn:
                blocks[i] = dataclasses.replace(block, btn=btn)


def _propagate_widths(blocks: List[Block]) -> None:
    for i in range(1, len(blocks)):
        if blocks[i].c_in != blocks[i - 1].c_out:
            blocks[i] = dataclasses.replace(blocks[i], c_in=blocks[i - 1].c_out)


def _draw(rng: np.random.Generator, values: Sequence[Any]) -> Any:
    return values[int(rng.integers(len(values)))]


def _mutate_block(working: List[Block], idx: int, space: SearchSpace, rng: np.random.Generator
                  ) -> Dict[int, Block]:
    """Mutated copies of ``working[idx]`` (and of the blocks tied to it), by index.

    May lower the next block's btn in ``working`` itself (the official side effect).
    """
    block = working[idx]
    if block.kind == STEM:
        out = min(space.stem_max_channels, round8(block.c_out * _draw(rng, space.channel_multipliers)))
        if idx + 1 < len(working):
            out = min(out, working[idx + 1].c_out)
        return {idx: dataclasses.replace(block, c_out=out)}
    method = _draw(rng, ("out", "btn", "L"))
    if method == "out":
        group = space.tie_group(idx)
        out = min(space.max_channels, round8(block.c_out * _draw(rng, space.channel_multipliers)))
        for member in group:
            if member in space.channel_ranges:
                lo, hi = space.channel_ranges[member]
                out = min(max(out, lo), hi)
        out = max(out, working[group[0]].c_in)
        after = group[-1] + 1
        if after < len(working):
            nxt = working[after]
            out = min(out, nxt.c_out)
            if nxt.btn > out:
                working[after] = dataclasses.replace(nxt, btn=out)
        changed = {}
        for member in group:
            other = dataclasses.replace(working[member], c_out=out)
            if other.btn < other.c_out / space.btn_floor_ratio:
                other = dataclasses.replace(other, btn=_btn_floor(other, space))
            changed[member] = other
        return changed
    elif method == "btn":
        btn = min(round8(block.btn * _draw(rng, space.channel_multipliers)), space.max_channels, block.c_out)
        block = dataclasses.replace(block, btn=btn)
    else:
        cap = space.depth_cap(idx)
        depth = block.L
        for _ in range(4):
            depth = min(max(block.L + _draw(rng, space.depth_deltas), 1), cap)
            if depth != block.L:
                break
        block = dataclasses.replace(block, L=depth)
    if block.btn < block.c_out / space.btn_floor_ratio:
        block = dataclasses.replace(block, btn=_btn_floor(block, space))
    return {idx: block}


def mutate(structure: Structure, space: SearchSpace, rng: np.random.Generator) -> Structure:
    """One child of ``structure`` (``spec/nas.md`` §5.3): ``blocks_per_child`` block mutations.

    For each block mutation up to ``len(structure)`` attempts are made: a block index is drawn uniformly
    (block 5 excluded only when ``mutate_last_block`` is False), mutated (stem: ``out``; super-block: one of
    ``out``/``btn``/``L``), widths re-chained, and the first attempt within the layer budget is kept. When
    every attempt breaks the budget the last one is kept, and the budget check of the search rejects it.

    Args:
        structure: the parent (never modified).
        space: the search space.
        rng: the search's only source of randomness.
    """
    working = list(structure)
    n_choices = len(working) if space.mutate_last_block else len(working) - 1
    for _ in range(space.blocks_per_child):
        trial = working
        for _attempt in range(len(working)):
            idx = int(rng.integers(n_choices))
            changed = _mutate_block(working, idx, space, rng)
            trial = list(working)
            for i, block in changed.items():
                trial[i] = block
            _propagate_widths(trial)
            if space.btn_policy == "clean":
                _clean_btns(trial, space)
            if count_layers(trial) <= space.max_layers:
                break
        working = trial
    return tuple(working)
