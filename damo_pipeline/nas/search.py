"""Budgeted, reproducible evolutionary search (MAE-NAS) with a Pareto front and resumable state.

The loop is TinyNAS's steady-state (mu + 1) evolution (``spec/nas.md`` §7): pick a parent uniformly from the
population, mutate it, drop the child if it breaks a budget, otherwise score it and keep the best
``population_size`` distinct structures. What differs from the official tool:

* one seeded ``numpy.random.Generator`` drives everything, and the population is kept sorted by
  (score, key), so the same seed, budgets and latency table give the same result, also across a resume;
* every structure is evaluated once (a cache keyed by :func:`~.space.structure_key`);
* budgets are real: FLOPs and parameters of the deployed detector, and its latency on the target device
  predicted from a measured :class:`~.latency.LatencyTable`, then checked by timing the finalists end to end;
* every feasible candidate feeds a Pareto front of score against latency;
* the state (population, cache, front, RNG) is written to JSON atomically every ``checkpoint_every``
  candidates and on Ctrl-C, and :meth:`EvolutionSearch.run` continues from it.
"""
from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .cost import CostModel
from .latency import LatencyModel
from .score import DAMOYOLO_STAGE_WEIGHTS, entropy_score
from .space import SearchSpace, Structure, check_structure, count_layers, mutate, parse_key, structure_key
from .template import DetectorTemplate

logger = logging.getLogger(__name__)

STATE_FORMAT = "damo_pipeline.nas.search_state/1"


@dataclass
class Budgets:
    """Upper limits a candidate must respect (``None``: unlimited). The layer budget is the space's.

    Attributes:
        latency_ms: latency of the fused detector at batch 1 on the target device (predicted from the
            latency table during the search; the finalists are timed for real).
        gflops: GFLOPs of the whole detector (:func:`damo_pipeline.models.profile`'s convention).
        params_m: parameters of the whole detector, in millions (RepConv merged, BatchNorm kept).
    """

    latency_ms: Optional[float] = None
    gflops: Optional[float] = None
    params_m: Optional[float] = None

    def __post_init__(self) -> None:
        for name in ("latency_ms", "gflops", "params_m"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or not value > 0 or math.isinf(value)):
                raise ValueError(f"Budget {name} must be a positive number or None, got {value!r}.")

    def violations(self, latency_ms: float, gflops: float, params: int) -> List[str]:
        """Names of the budgets the values exceed."""
        broken = []
        if self.latency_ms is not None and latency_ms > self.latency_ms:
            broken.append("latency_ms")
        if self.gflops is not None and gflops > self.gflops:
            broken.append("gflops")
        if self.params_m is not None and params / 1e6 > self.params_m:
            broken.append("params_m")
        return broken

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Budgets":
        return cls(**{k: data.get(k) for k in ("latency_ms", "gflops", "params_m")})


@dataclass
class SearchConfig:
    """Everything that determines a search's result.

    Attributes:
        template: family, base size (neck/head) and input size of the detector.
        space: the search space (layer budget included).
        budgets: latency / FLOPs / params limits.
        stage_weights: alpha of the entropy score per stage.
        iterations: candidates to generate (rejected and duplicate ones count, as in TinyNAS).
        population_size: structures kept.
        seed: seed of the search's only random generator.
        finalists: Pareto-front structures timed end to end at the end.
        checkpoint_every: candidates between two state writes.
    """

    template: DetectorTemplate = field(default_factory=DetectorTemplate)
    space: SearchSpace = field(default_factory=SearchSpace)
    budgets: Budgets = field(default_factory=Budgets)
    stage_weights: Tuple[float, ...] = DAMOYOLO_STAGE_WEIGHTS
    iterations: int = 50000
    population_size: int = 512
    seed: int = 0
    finalists: int = 5
    checkpoint_every: int = 2000

    def __post_init__(self) -> None:
        self.stage_weights = tuple(float(a) for a in self.stage_weights)
        for name in ("iterations", "population_size", "finalists", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "iterations" else 1):
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}.")

    def to_dict(self) -> Dict[str, Any]:
        return {"template": self.template.to_dict(), "space": self.space.to_dict(), "budgets": self.budgets.to_dict(),
                "stage_weights": list(self.stage_weights), "iterations": self.iterations,
                "population_size": self.population_size, "seed": self.seed, "finalists": self.finalists,
                "checkpoint_every": self.checkpoint_every}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SearchConfig":
        values = dict(data)
        values["template"] = DetectorTemplate.from_dict(values.get("template", {}))
        values["space"] = SearchSpace.from_dict(values.get("space", {}))
        values["budgets"] = Budgets.from_dict(values.get("budgets", {}))
        return cls(**values)


@dataclass
class Candidate:
    """An evaluated structure.

    Attributes:
        key: :func:`~.space.structure_key`.
        score: closed-form entropy score (``None`` when the candidate was rejected before scoring).
        latency_ms: predicted latency of the fused detector (``None`` when rejected before costing).
        gflops / params / backbone_gflops / backbone_params: deployed costs (``profile`` convention).
        layers: TinyNAS layer count.
        violations: why it is infeasible (empty: feasible).
    """

    key: str
    score: Optional[float]
    latency_ms: Optional[float]
    gflops: Optional[float]
    params: Optional[int]
    backbone_gflops: Optional[float]
    backbone_params: Optional[int]
    layers: int
    violations: Tuple[str, ...] = ()

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def structure(self) -> Structure:
        return parse_key(self.key)

    def to_row(self) -> List[Any]:
        return [self.key, self.score, self.latency_ms, self.gflops, self.params, self.backbone_gflops,
                self.backbone_params, self.layers, list(self.violations)]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "Candidate":
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], tuple(row[8]))

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["violations"] = list(self.violations)
        data["params_m"] = None if self.params is None else self.params / 1e6
        return data


class ParetoFront:
    """Non-dominated feasible candidates: higher score and lower predicted latency are better.

    Kept sorted by latency (ascending); along the front the score strictly increases.
    """

    def __init__(self) -> None:
        self._latency: List[float] = []
        self._items: List[Candidate] = []

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._items))

    def add(self, cand: Candidate) -> bool:
        """Insert ``cand`` unless dominated; drop what it dominates. Returns whether it was inserted."""
        lat, score = cand.latency_ms, cand.score
        if lat is None or score is None:
            return False
        i = bisect.bisect_right(self._latency, lat)
        # The best score at latency <= lat is the item just before i (scores increase along the front).
        if i > 0 and self._items[i - 1].score >= score:  # type: ignore[operator]
            return False
        j = i
        while j < len(self._items) and self._items[j].score <= score:  # type: ignore[operator]
            j += 1
        start = i
        while start > 0 and self._latency[start - 1] == lat:
            start -= 1
        del self._items[start:j]
        del self._latency[start:j]
        self._items.insert(start, cand)
        self._latency.insert(start, lat)
        return True

    def items(self) -> List[Candidate]:
        """The front, by increasing latency (and score)."""
        return list(self._items)


@dataclass
class SearchStats:
    """Counters of a search (all cumulative across resumes except ``elapsed_s``, which is summed too)."""

    iterations: int = 0
    evaluated: int = 0
    cache_hits: int = 0
    feasible: int = 0
    rejected: Dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


class EvolutionSearch:
    """The search loop with its state.

    Args:
        config: what to search.
        latency_model: predicts the detector latency (its table is filled and saved as needed).
        state_path: JSON file of the resumable state; when it exists, :meth:`run` continues from it.
        progress: show a tqdm bar (only when stderr is a terminal).

    Raises:
        ValueError: the seed structure already breaks a budget, or the state file belongs to another search.
    """

    def __init__(self, config: SearchConfig, latency_model: LatencyModel,
                 state_path: Optional[Union[str, Path]] = None, progress: bool = True) -> None:
        self.config = config
        self.latency_model = latency_model
        self.cost_model: CostModel = latency_model.cost_model
        if self.cost_model.template != config.template:
            raise ValueError(f"The latency model is for {self.cost_model.template}, the search for {config.template}.")
        self.state_path = Path(state_path) if state_path is not None else None
        self.progress = progress
        self.rng = np.random.default_rng(config.seed)
        self.cache: Dict[str, Candidate] = {}
        self.population: List[Tuple[float, str]] = []  # sorted by (-score, key)
        self.pareto = ParetoFront()
        self.stats = SearchStats()
        if self.state_path is not None and self.state_path.is_file():
            self._load_state(self.state_path)
        else:
            seed = self.evaluate(config.space.seed())
            if not seed.feasible:
                raise ValueError(
                    f"The seed structure already breaks the budgets {list(seed.violations)} (latency "
                    f"{seed.latency_ms:.2f} ms, {seed.gflops:.2f} GFLOPs, {seed.params / 1e6:.2f} M params, "
                    f"{seed.layers} layers; budgets {config.budgets.to_dict()}, max_layers "
                    f"{config.space.max_layers}); raise the budget or choose a smaller base size.")
            self._insert(seed)

    # --- evaluation -------------------------------------------------------------------------------------
    def evaluate(self, structure: Structure) -> Candidate:
        """Cost, budget check and (when feasible) score of ``structure``; cached by key."""
        key = structure_key(structure)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        self.stats.evaluated += 1
        layers = count_layers(structure)
        problems = check_structure(structure, self.config.space)
        if problems:
            cand = Candidate(key, None, None, None, None, None, None, layers, ("invalid",))
            logger.debug("invalid child %s: %s", key, problems)
        else:
            ops = self.cost_model.backbone_ops(structure)
            cost = self.cost_model.cost(structure, ops)
            latency = self.latency_model.predict_ms(structure, ops)
            broken = self.config.budgets.violations(latency, cost.gflops, cost.params)
            score = None if broken else entropy_score(structure, self.config.stage_weights).score
            cand = Candidate(key, score, latency, cost.gflops, cost.params, cost.backbone_gflops,
                             cost.backbone_params, layers, tuple(broken))
        self.cache[key] = cand
        if cand.feasible:
            self.stats.feasible += 1
            self.pareto.add(cand)
        else:
            for reason in cand.violations:
                self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
        return cand

    def _insert(self, cand: Candidate) -> None:
        item = (-float(cand.score), cand.key)  # type: ignore[arg-type]
        i = bisect.bisect_left(self.population, item)
        if i < len(self.population) and self.population[i] == item:
            return
        self.population.insert(i, item)
        if len(self.population) > self.config.population_size:
            self.population.pop()

    # --- loop -------------------------------------------------------------------------------------------
    @property
    def best(self) -> Candidate:
        """The highest-scoring feasible candidate so far."""
        return self.cache[self.population[0][1]]

    def step(self) -> Candidate:
        """Generate, evaluate and (if feasible) insert one child."""
        parent_key = self.population[int(self.rng.integers(len(self.population)))][1]
        child = mutate(parse_key(parent_key), self.config.space, self.rng)
        cand = self.evaluate(child)
        if cand.feasible:
            self._insert(cand)
        self.stats.iterations += 1
        return cand

    def run(self) -> "EvolutionSearch":
        """Run until ``config.iterations`` candidates were generated (continuing a loaded state).

        Writes the state every ``checkpoint_every`` candidates, at the end, and when interrupted (Ctrl-C);
        an interrupted run raises ``KeyboardInterrupt`` after saving.
        """
        from tqdm.auto import tqdm

        total = self.config.iterations
        bar = tqdm(total=total, initial=self.stats.iterations, desc="MAE-NAS", unit="cand", dynamic_ncols=True,
                   disable=not (self.progress and sys.stderr.isatty()))
        started = time.perf_counter()
        try:
            while self.stats.iterations < total:
                self.step()
                bar.update(1)
                if self.stats.iterations % 100 == 0 or self.stats.iterations == total:
                    bar.set_postfix_str(self._postfix(), refresh=False)
                if self.stats.iterations % self.config.checkpoint_every == 0:
                    self.stats.elapsed_s += time.perf_counter() - started
                    started = time.perf_counter()
                    self.save_state()
        except KeyboardInterrupt:
            self.stats.elapsed_s += time.perf_counter() - started
            self.save_state()
            bar.close()
            logger.warning("search interrupted at candidate %d; state saved to %s", self.stats.iterations,
                           self.state_path)
            raise
        self.stats.elapsed_s += time.perf_counter() - started
        bar.close()
        self.save_state()
        return self

    def _postfix(self) -> str:
        best = self.best
        b = self.config.budgets
        parts = [f"best={best.score:.2f}", f"lat={best.latency_ms:.1f}"
                 + (f"/{b.latency_ms:g}ms" if b.latency_ms else "ms")]
        if b.gflops:
            parts.append(f"gflops={best.gflops:.1f}/{b.gflops:g}")
        if b.params_m:
            parts.append(f"params={best.params / 1e6:.2f}/{b.params_m:g}M")
        parts.append(f"feasible={self.stats.feasible / max(1, self.stats.evaluated):.0%}")
        return " ".join(parts)

    # --- state ------------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {"format": STATE_FORMAT, "config": self.config.to_dict(), "rng": self.rng.bit_generator.state,
                "population": [key for _, key in self.population],
                "pareto": [c.key for c in self.pareto.items()],
                "cache": [c.to_row() for c in self.cache.values()], "stats": self.stats.to_dict(),
                "calibration": self.latency_model.calibration.to_dict(),
                "latency_device": self.latency_model.table.device}

    def save_state(self, path: Optional[Union[str, Path]] = None) -> Optional[Path]:
        """Write the state atomically (and the latency table, which may have grown)."""
        self.latency_model.table.save()
        target = Path(path) if path is not None else self.state_path
        if target is None:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.state_dict()))
        os.replace(tmp, target)
        return target

    def _load_state(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"Search state {str(path)!r} cannot be read ({e}); delete it to start afresh.") from e
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise ValueError(f"{str(path)!r} is not a search state ({STATE_FORMAT}).")
        saved = dict(data["config"])
        current = self.config.to_dict()
        differing = sorted(k for k in current if k not in ("iterations", "checkpoint_every", "finalists")
                           and saved.get(k) != current[k])
        if differing:
            raise ValueError(f"Search state {str(path)!r} belongs to a search with different {differing}; "
                             f"use the same settings to resume, or another output folder.")
        if data.get("latency_device") != self.latency_model.table.device:
            raise ValueError(f"Search state {str(path)!r} was searched with latencies of "
                             f"{data.get('latency_device')}, not {self.latency_model.table.device}.")
        self.latency_model.calibration = type(self.latency_model.calibration).from_dict(data["calibration"])
        self.rng.bit_generator.state = data["rng"]
        self.cache = {row[0]: Candidate.from_row(row) for row in data["cache"]}
        self.population = [(-float(self.cache[key].score), key) for key in data["population"]]  # type: ignore[arg-type]
        for key in data["pareto"]:
            self.pareto.add(self.cache[key])
        stats = data["stats"]
        self.stats = SearchStats(stats["iterations"], stats["evaluated"], stats["cache_hits"], stats["feasible"],
                                 dict(stats["rejected"]), float(stats["elapsed_s"]))
        logger.info("resumed search from %s at candidate %d", path, self.stats.iterations)


@dataclass
class Finalist:
    """A Pareto-front structure timed end to end."""

    candidate: Candidate
    measured_ms: float
    samples: List[float]
    within_budget: bool

    def to_dict(self) -> Dict[str, Any]:
        return {**self.candidate.to_dict(), "measured_ms": self.measured_ms, "samples_ms": self.samples,
                "within_budget": self.within_budget}


def choose_winner(search: EvolutionSearch, count: Optional[int] = None) -> Tuple[Optional[Finalist], List[Finalist]]:
    """Time the best ``count`` Pareto-front structures end to end and pick the winner.

    The front is walked from the highest score down. The winner is the highest-scoring structure whose
    *measured* latency is within the latency budget (the first one when there is no latency budget). When
    none of the first ``count`` fits, the walk continues up to ``3 * count`` structures; if still none fits,
    the fastest measured one is returned with ``within_budget=False``.

    Returns:
        ``(winner, finalists)``; ``winner`` is None only when the front is empty. Without a detector timer
        the predictions stand in for measurements.
    """
    count = count or search.config.finalists
    budget = search.config.budgets.latency_ms
    front = sorted(search.pareto.items(), key=lambda c: (-float(c.score), c.key))  # type: ignore[arg-type]
    finalists: List[Finalist] = []
    for i, cand in enumerate(front[: 3 * count]):
        if i >= count and any(f.within_budget for f in finalists):
            break
        if search.latency_model.detector_timer is not None:
            timing = search.latency_model.measure_ms(cand.structure)
            measured, samples = float(timing["median_ms"]), list(timing["samples"])
        else:
            measured, samples = float(cand.latency_ms), []  # type: ignore[arg-type]
        finalists.append(Finalist(cand, measured, samples, budget is None or measured <= budget))
    search.latency_model.table.save()
    if not finalists:
        return None, []
    fitting = [f for f in finalists if f.within_budget]
    winner = fitting[0] if fitting else min(finalists, key=lambda f: f.measured_ms)
    if not fitting:
        logger.warning("no finalist met the latency budget %.2f ms when measured; returning the fastest (%.2f ms)",
                       budget, winner.measured_ms)
    return winner, finalists
