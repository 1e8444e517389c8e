"""Write a finished search to a folder: structure, trainable config, Pareto front (JSON + PNG) and a report.

Files (each written atomically):

* ``structure.json`` — the winner as a DAMO-YOLO structure list (stem ``in`` = 3, v1 class names, no nbits
  keys), its score with the per-stage terms, costs in both conventions, latency and the search settings.
* ``config.json`` — a :class:`~damo_pipeline.models.ModelConfig`: ``build_model("config.json")`` builds the
  detector and ``recipes/finetune.py --model config.json`` trains it.
* ``pareto.json`` / ``pareto.png`` — the front of score against predicted latency, the timed finalists and
  the reference structures.
* ``report.md`` — budgets against what the winner uses, the comparison with the shipped structure of the
  base size, the search statistics and the next command.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from damo_pipeline.version import __version__

from .cost import search_time_cost
from .plot import pareto_plot
from .score import entropy_score
from .search import Candidate, EvolutionSearch, Finalist
from .space import Structure, structure_key, to_damo_list

logger = logging.getLogger(__name__)

STRUCTURE_FORMAT = "damo_pipeline.nas.structure/1"
PARETO_FORMAT = "damo_pipeline.nas.pareto/1"


@dataclass
class ReferencePoint:
    """A known structure evaluated like a candidate (e.g. the shipped backbone of the base size)."""

    name: str
    structure: Structure
    score: float
    predicted_ms: float
    measured_ms: Optional[float]
    gflops: float
    params: int
    layers: int

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "key": structure_key(self.structure), "score": self.score,
                "predicted_ms": self.predicted_ms, "measured_ms": self.measured_ms, "gflops": self.gflops,
                "params": self.params, "params_m": self.params / 1e6, "layers": self.layers,
                "structure": to_damo_list(self.structure)}


def evaluate_reference(search: EvolutionSearch, name: str, structure: Structure, measure: bool = True
                       ) -> ReferencePoint:
    """Score, cost, predicted and (when a detector timer exists and ``measure``) measured latency."""
    latency = search.latency_model
    cost = search.cost_model.cost(structure)
    measured = None
    if measure and latency.detector_timer is not None:
        measured = float(latency.measure_ms(structure)["median_ms"])
    return ReferencePoint(name, structure, entropy_score(structure, search.config.stage_weights).score,
                          latency.predict_ms(structure), measured, cost.gflops, cost.params, cost.layers)


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _write_json(path: Path, data: Any) -> Path:
    return _write_text(path, json.dumps(data, indent=2) + "\n")


def structure_record(search: EvolutionSearch, winner: Finalist, name: str) -> Dict[str, Any]:
    """The content of ``structure.json``."""
    structure = winner.candidate.structure
    score = entropy_score(structure, search.config.stage_weights)
    official = search_time_cost(structure)
    cost = search.cost_model.cost(structure)
    table = search.latency_model.table
    return {
        "format": STRUCTURE_FORMAT, "name": name, "damo_pipeline_version": __version__,
        "family": search.config.template.family, "base": search.config.template.base,
        "img_size": search.config.template.img_size, "key": winner.candidate.key,
        "structure": to_damo_list(structure),
        "score": {"value": score.score, "stage_weights": list(search.config.stage_weights),
                  "stage_terms": list(score.stage_terms), "stage_entropies": list(score.entropies),
                  "convention": "closed-form MAE-NAS entropy of the search-time network (stem input 12 channels)"},
        "cost": {**cost.to_dict(), "params_m": cost.params / 1e6,
                 "convention": "deployed detector at img_size, damo_pipeline.models.profile (2 x MACs, RepConv "
                               "merged, BatchNorm kept)"},
        "search_time_cost": {"flops": official.flops, "params": official.params, "layers": official.layers,
                             "convention": "TinyNAS thop-style count of the search-time network at 320x320x12"},
        "latency": {"predicted_ms": winner.candidate.latency_ms, "measured_ms": winner.measured_ms,
                    "samples_ms": winner.samples, "within_budget": winner.within_budget,
                    "device": table.device, "calibration": search.latency_model.calibration.to_dict(),
                    "what": "fused detector (RepConv and BatchNorm folded), batch 1, float32, no NMS"},
        "budgets": {**search.config.budgets.to_dict(), "max_layers": search.config.space.max_layers},
        "search": search.config.to_dict(), "stats": search.stats.to_dict(),
    }


def _fmt(value: Optional[float], spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _report(search: EvolutionSearch, record: Mapping[str, Any], winner: Finalist, finalists: Sequence[Finalist],
            references: Sequence[ReferencePoint], name: str, command: Optional[str], out_dir: Path,
            total_wall_s: Optional[float]) -> str:
    cfg = search.config
    budgets = cfg.budgets
    cand = winner.candidate
    device = search.latency_model.table.device
    cal = search.latency_model.calibration
    where = (f"{device.get('device_name')} ({device.get('device_type')}, torch {device.get('torch')}, "
             f"{device.get('threads')} threads, {device.get('clock', 'wall')} clock)")
    lines = [f"# MAE-NAS search `{name}`", ""]
    if command:
        lines += ["```bash", command, "```", ""]
    lines += [f"Family `{cfg.template.family}` (neck and head of `{cfg.template.base_model}`), input "
              f"{cfg.template.img_size}x{cfg.template.img_size}, seed {cfg.seed}, {search.stats.iterations} candidates "
              f"({search.stats.evaluated} evaluated, {search.stats.cache_hits} duplicates served from the cache, "
              f"{search.stats.feasible} within budget) in {search.stats.elapsed_s:.1f} s of search"
              + (f"; {total_wall_s:.1f} s in all, with layer timing, calibration and finalist timing." if total_wall_s
                 else "."), "",
              "## Budgets", "", "| budget | limit | winner |", "|---|---|---|",
              f"| latency (ms) of the fused detector, batch 1, on {where} | {_fmt(budgets.latency_ms, '.4g')} | "
              f"predicted {cand.latency_ms:.2f} ms, measured {winner.measured_ms:.2f} ms (median) |",
              f"| GFLOPs of the detector | {_fmt(budgets.gflops, 'g')} | {cand.gflops:.2f} |",
              f"| parameters of the detector (M) | {_fmt(budgets.params_m, 'g')} | {cand.params / 1e6:.2f} |",
              f"| TinyNAS layers | {cfg.space.max_layers} | {cand.layers} |", ""]
    if not winner.within_budget:
        lines += ["**No timed finalist met the latency budget; the fastest one is reported.** The table "
                  "predictions were optimistic on this machine: re-run with a lower budget or re-measure the table "
                  "on a quieter machine.", ""]
    lines += ["## Winner against the reference structures", "",
              "| structure | score | predicted ms | measured ms | GFLOPs | params M | layers |",
              "|---|---|---|---|---|---|---|",
              f"| **winner** | {cand.score:.4f} | {cand.latency_ms:.2f} | {winner.measured_ms:.2f} | {cand.gflops:.2f} "
              f"| {cand.params / 1e6:.2f} | {cand.layers} |"]
    for ref in references:
        lines.append(f"| {ref.name} | {ref.score:.4f} | {ref.predicted_ms:.2f} | {_fmt(ref.measured_ms)} | "
                     f"{ref.gflops:.2f} | {ref.params / 1e6:.2f} | {ref.layers} |")
    lines += ["", "Scores are the closed-form MAE-NAS entropy (stage weights "
              f"{list(cfg.stage_weights)}), the official convention: the shipped T, S, M score 1015.14, 1380.59, "
              "2293.56.", "", "## Structure", "", "| block | type | in | out | btn | L | stride |", "|---|---|---|---|---|---|---|"]
    for i, entry in enumerate(record["structure"]):
        lines.append(f"| {i} | {entry['class']} | {entry['in']} | {entry['out']} | {entry.get('btn', '–')} | "
                     f"{entry.get('L', '–')} | {entry['s']} |")
    lines += ["", "## Latency", "",
              f"Layer timings come from the table `{search.latency_model.table.path}` ({where}); the table sum is "
              f"scaled by {cal.scale:.3f}, fitted on whole detectors timed end to end:", ""]
    for point in cal.points:
        lines.append(f"* {point['name']}: table {point['table_ms']:.2f} ms, measured {point['measured_ms']:.2f} ms")
    lines += ["", "Finalists (the best of the Pareto front, timed end to end; median of repeats):", "",
              "| score | predicted ms | measured ms | within budget |", "|---|---|---|---|"]
    for f in finalists:
        lines.append(f"| {f.candidate.score:.4f} | {f.candidate.latency_ms:.2f} | {f.measured_ms:.2f} | "
                     f"{'yes' if f.within_budget else 'no'} |")
    lines += ["", "Timings on a shared or busy machine are noisy; compare numbers measured in the same run.", "",
              "## Next: train it", "", "```bash",
              f"python recipes/finetune.py --model {out_dir / 'config.json'} --data <your dataset> --pretrained none "
              f"--out <run folder>",
              "```", "", "or in Python: `build_model(\"" + str(out_dir / "config.json") + "\")`.", ""]
    return "\n".join(lines)


def export_search(out_dir: Union[str, Path], search: EvolutionSearch, winner: Finalist,
                  finalists: Sequence[Finalist], references: Sequence[ReferencePoint] = (),
                  name: Optional[str] = None, command: Optional[str] = None,
                  total_wall_s: Optional[float] = None) -> Dict[str, Path]:
    """Write ``structure.json``, ``config.json``, ``pareto.json``, ``pareto.png`` and ``report.md``.

    Args:
        out_dir: output folder (created).
        search: the finished search.
        winner / finalists: from :func:`~.search.choose_winner`.
        references: structures to compare with (shown in the report and the plot).
        name: model name in ``config.json`` (default: the folder name).
        command: the command line that ran the search (quoted in the report).
        total_wall_s: wall time of the whole run (table timing, calibration, search, finalists), for the report.

    Returns:
        The written paths by file name.
    """
    out = Path(out_dir)
    name = name or out.resolve().name
    record = structure_record(search, winner, name)
    config = search.config.template.model_config(winner.candidate.structure, name=name)
    paths = {"structure.json": _write_json(out / "structure.json", record),
             "config.json": _write_text(out / "config.json", config.to_json() + "\n")}
    front: List[Candidate] = search.pareto.items()
    measured = {f.candidate.key: f for f in finalists}
    front_rows = []
    for cand in front:
        row = cand.to_dict()
        if cand.key in measured:
            row["measured_ms"] = measured[cand.key].measured_ms
        row["structure"] = to_damo_list(cand.structure)
        front_rows.append(row)
    pareto = {"format": PARETO_FORMAT, "objective": "maximise score, minimise predicted latency (ms)",
              "budgets": search.config.budgets.to_dict(), "winner": winner.candidate.key, "front": front_rows,
              "finalists": [f.to_dict() for f in finalists], "references": [r.to_dict() for r in references]}
    paths["pareto.json"] = _write_json(out / "pareto.json", pareto)
    feasible = [c for c in search.cache.values() if c.feasible and c.score is not None]
    step = max(1, len(feasible) // 5000)
    cloud = [(c.latency_ms, c.score) for c in sorted(feasible, key=lambda c: c.key)[::step]]
    paths["pareto.png"] = pareto_plot(
        out / "pareto.png", cloud, [(c.latency_ms, c.score) for c in front], search.config.budgets.latency_ms,
        (winner.candidate.latency_ms, winner.candidate.score),
        [(r.name, (r.predicted_ms, r.score)) for r in references], title=f"MAE-NAS {name}: score vs latency")
    paths["report.md"] = _write_text(out / "report.md", _report(search, record, winner, finalists, references, name,
                                                                 command, out, total_wall_s))
    logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
