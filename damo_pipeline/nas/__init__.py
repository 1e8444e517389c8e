"""MAE-NAS for DAMO-YOLO: zero-shot, budgeted search of TinyNAS backbones, from budget to trainable config.

* :mod:`.space` — structures, the official search spaces (T, S, M presets), mutation rules, validity.
* :mod:`.score` — the closed-form multi-scale entropy score and the noise-input estimator.
* :mod:`.ops` / :mod:`.cost` — the deployed detector's layers and its FLOPs / params without a forward pass,
  and TinyNAS's own search-time count.
* :mod:`.latency` — a per-device table of measured layer timings, calibrated on whole detectors.
* :mod:`.search` — the seeded, resumable evolution with budgets and a Pareto front.
* :mod:`.export` — structure.json, config.json (``build_model`` accepts it), pareto.json/png, report.md.

The command line is ``recipes/nas.py`` (:func:`.recipe.main`); the tutorial is ``docs/nas.md``.
"""
from .cost import CostModel, DetectorCost, SearchTimeCost, search_time_cost
from .export import export_search
from .latency import (AnalyticOpTimer, LatencyModel, LatencyTable, TorchOpTimer, analytic_detector_timer,
                      torch_detector_timer)
from .score import DAMOYOLO_STAGE_WEIGHTS, EntropyScore, entropy_score, noise_entropy_score
from .search import Budgets, Candidate, EvolutionSearch, ParetoFront, SearchConfig, choose_winner
from .space import (SPACE_PRESETS, Block, SearchSpace, Structure, check_structure, count_layers, mutate,
                    parse_key, parse_structure, seed_structure, space_preset, structure_key, to_damo_list)
from .template import DetectorTemplate, shipped_structure

__all__ = [
    "AnalyticOpTimer", "Block", "Budgets", "Candidate", "CostModel", "DAMOYOLO_STAGE_WEIGHTS", "DetectorCost",
    "DetectorTemplate", "EntropyScore", "EvolutionSearch", "LatencyModel", "LatencyTable", "ParetoFront",
    "SPACE_PRESETS", "SearchConfig", "SearchSpace", "SearchTimeCost", "Structure", "TorchOpTimer",
    "analytic_detector_timer", "check_structure", "choose_winner", "count_layers", "entropy_score",
    "export_search", "mutate", "noise_entropy_score", "parse_key", "parse_structure", "search_time_cost",
    "seed_structure", "shipped_structure", "space_preset", "structure_key", "to_damo_list", "torch_detector_timer",
]
