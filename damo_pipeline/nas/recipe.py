"""The ``recipes/nas.py`` command: from budgets to a searched, trainable detector config.

    python recipes/nas.py --family res --budget-latency-ms 80 --device cpu --out runs/my-nas

Steps: build (or load) the device's latency table and calibrate it on two real detectors (the space's seed
and the shipped backbone of the base size); run the seeded evolution under the budgets; time the best
Pareto-front structures end to end and keep the best one that really fits; write ``structure.json``,
``config.json``, ``pareto.json``, ``pareto.png`` and ``report.md`` to ``--out``; optionally publish the
config (no weights) with a model card naming the search budget.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from .cost import CostModel
from .export import evaluate_reference, export_search
from .latency import LatencyModel, LatencyTable, TorchOpTimer, torch_detector_timer
from .score import DAMOYOLO_STAGE_WEIGHTS
from .search import Budgets, EvolutionSearch, SearchConfig, choose_winner
from .space import space_preset
from .template import BASES, DEFAULT_BASE, DetectorTemplate, shipped_structure

logger = logging.getLogger(__name__)

STATE_NAME = "search_state.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recipes/nas.py", description=__doc__.split("\n\n")[0],
        epilog="Budgets are upper limits for the deployed detector (backbone + neck + head, fused, batch 1, "
               "--img-size). Give at least one of --budget-latency-ms, --budget-flops, --budget-params.")
    parser.add_argument("--family", required=True, choices=["res", "csp"],
                        help="backbone wrapper: res (TinyNAS_res, as T/S, k1kx blocks) or csp (TinyNAS_csp, as M/L, "
                             "kxkx blocks)")
    parser.add_argument("--budget-latency-ms", type=_latency_budget, default=None, metavar="MS|base",
                        help="latency budget of the fused detector on --device, in ms at batch 1; 'base': the "
                             "measured latency of the shipped --base detector on this device")
    parser.add_argument("--device", default="cpu", help="where latency is measured: cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--budget-flops", type=float, default=None, help="GFLOPs budget of the detector (profile())")
    parser.add_argument("--budget-params", type=float, default=None, help="parameter budget of the detector, millions")
    parser.add_argument("--max-layers", type=int, default=None,
                        help="TinyNAS layer budget (1 + 2 x units); default from --base: t 20, s 25, m 35, l 45")
    parser.add_argument("--base", choices=BASES, default=None,
                        help="zoo size giving the channel ranges, layer budget, neck and head (default t for res, "
                             "m for csp)")
    parser.add_argument("--img-size", type=int, default=640, help="input side of the detector (default 640)")
    parser.add_argument("--iterations", type=int, default=50000, help="candidates to generate (default 50000)")
    parser.add_argument("--population", type=int, default=512, help="population size (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    parser.add_argument("--finalists", type=int, default=5, help="front structures timed end to end (default 5)")
    parser.add_argument("--stage-weights", default=",".join(f"{a:g}" for a in DAMOYOLO_STAGE_WEIGHTS),
                        help="entropy weights of stages C1..C5 (default 0,0,1,1,16 as DAMO-YOLO)")
    parser.add_argument("--out", required=True, help="output folder, e.g. runs/my-nas")
    parser.add_argument("--name", default=None, help="model name in config.json (default: the --out folder name)")
    parser.add_argument("--resume", action="store_true", help=f"continue the search saved in --out/{STATE_NAME}")
    parser.add_argument("--lut", default=None, help="latency table file (default: per device in the cache, "
                                                    "$DAMO_PIPELINE_CACHE/nas)")
    parser.add_argument("--recalibrate", action="store_true",
                        help="time the calibration detectors again instead of re-using the table's calibration")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads while timing (default torch's)")
    parser.add_argument("--clock", choices=["wall", "process"], default="wall",
                        help="wall: elapsed time (default); process: CPU time of this process, immune to other "
                             "processes on a shared machine (use with --threads 1: single-thread latency)")
    parser.add_argument("--timing-repeats", type=int, default=15,
                        help="forward passes per end-to-end detector timing; the median is used (default 15)")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", default=None,
                        help="publish the searched config (no weights) with a model card naming the budget")
    parser.add_argument("--hub", default="hf", help="hf, modelscope, or a local registry folder (default hf)")
    parser.add_argument("--dry-run", action="store_true", help="with --push-to-hub: prepare but send nothing")
    parser.add_argument("--quiet", action="store_true", help="only warnings and the final summary")
    return parser


def _latency_budget(text: str) -> Union[float, str]:
    if text.strip().lower() == "base":
        return "base"
    try:
        return float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected milliseconds or 'base', got {text!r}") from e


def _stage_weights(text: str) -> List[float]:
    try:
        weights = [float(v) for v in text.split(",")]
    except ValueError as e:
        raise ValueError(f"--stage-weights must be 5 comma-separated numbers, got {text!r}.") from e
    if len(weights) != 5:
        raise ValueError(f"--stage-weights needs 5 values (stages C1..C5), got {len(weights)}: {text!r}.")
    return weights


def config_from_args(args: argparse.Namespace, base_latency_ms: Optional[float] = None) -> SearchConfig:
    """The :class:`SearchConfig` the arguments describe.

    ``base_latency_ms`` replaces ``--budget-latency-ms base`` (the measured latency of the shipped base model).

    Raises:
        ValueError: no budget, or a bad value (the message names the flag).
    """
    if args.budget_latency_ms is None and args.budget_flops is None and args.budget_params is None:
        raise ValueError("Give at least one budget: --budget-latency-ms, --budget-flops or --budget-params.")
    base = args.base or DEFAULT_BASE[args.family]
    latency_ms = args.budget_latency_ms
    if latency_ms == "base":
        if base_latency_ms is None:
            raise ValueError("--budget-latency-ms base needs the measured latency of the base model.")
        latency_ms = base_latency_ms
    overrides: Dict[str, Any] = {}
    if args.max_layers is not None:
        overrides["max_layers"] = args.max_layers
    return SearchConfig(template=DetectorTemplate(args.family, base, args.img_size),
                        space=space_preset(base, args.family, **overrides),
                        budgets=Budgets(latency_ms, args.budget_flops, args.budget_params),
                        stage_weights=tuple(_stage_weights(args.stage_weights)), iterations=args.iterations,
                        population_size=args.population, seed=args.seed, finalists=args.finalists)


def publish_config(out_dir: Path, repo_id: str, hub: str = "hf", dry_run: bool = False) -> str:
    """Publish ``out_dir/config.json`` (architecture only) with a card naming the search budget.

    Writes the hub folder ``out_dir/hub`` with :func:`damo_pipeline.hub.save_pretrained` and sends it with
    :func:`damo_pipeline.hub.push_to_hub`. Returns the repo URL or registry folder.
    """
    from damo_pipeline.hub import push_to_hub, save_pretrained
    from damo_pipeline.models import ModelConfig

    record = json.loads((out_dir / "structure.json").read_text())
    config = ModelConfig.from_json(out_dir / "config.json")
    budgets, latency, device = record["budgets"], record["latency"], record["latency"]["device"]
    where = f"{device.get('device_name')} ({device.get('device_type')}, torch {device.get('torch')}, " \
            f"{device.get('threads')} threads, {device.get('clock', 'wall')} clock)"
    rows = ["| budget | limit | searched model |", "|---|---|---|",
            f"| latency, fused detector, batch 1, {record['img_size']} px, {where} | "
            f"{budgets.get('latency_ms') or '–'} ms | {latency['measured_ms']:.2f} ms measured "
            f"({latency['predicted_ms']:.2f} predicted) |",
            f"| GFLOPs | {budgets.get('gflops') or '–'} | {record['cost']['gflops']:.2f} |",
            f"| parameters (M) | {budgets.get('params_m') or '–'} | {record['cost']['params_m']:.2f} |",
            f"| TinyNAS layers | {budgets['max_layers']} | {record['cost']['layers']} |"]
    body = ("\n".join(rows) + f"\n\nMAE-NAS entropy score {record['score']['value']:.4f} (stage weights "
            f"{record['score']['stage_weights']}); family `{record['family']}`, neck and head of "
            f"`damoyolo-{record['base']}`; seed {record['search']['seed']}, {record['stats']['iterations']} "
            f"candidates.\n\nBackbone structure:\n\n```json\n[\n"
            + ",\n".join("  " + json.dumps(entry) for entry in record["structure"]) + "\n]\n```")
    folder = save_pretrained(
        config, out_dir / "hub", repo_id=repo_id,
        description=(f"A DAMO-YOLO detector whose backbone was searched with MAE-NAS (damo_pipeline) under a "
                     f"latency budget on {where}. Architecture only: train it with recipes/finetune.py."),
        extra_card_sections={"Search budget": body})
    return push_to_hub(folder, repo_id, hub=hub, dry_run=dry_run)


def run(args: argparse.Namespace, command: Optional[str] = None) -> Dict[str, Any]:
    """Run the recipe for parsed ``args``; returns a summary dict (also printed by :func:`main`).

    ``--threads`` sets torch's CPU thread count for the run and restores it afterwards.
    """
    import torch

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}.")
    previous_threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, command)
    finally:
        torch.set_num_threads(previous_threads)


def _run(args: argparse.Namespace, command: Optional[str]) -> Dict[str, Any]:
    started = time.perf_counter()
    config = config_from_args(args, base_latency_ms=1.0 if args.budget_latency_ms == "base" else None)  # set below
    out = Path(args.out)
    state = out / STATE_NAME
    if state.is_file() and not args.resume:
        raise ValueError(f"{str(out)!r} already holds a search ({STATE_NAME}); pass --resume to continue it or "
                         f"choose another --out.")
    timer = TorchOpTimer(args.device, clock=args.clock)
    table = LatencyTable(timer, args.lut or LatencyTable.default_path(timer))
    latency = LatencyModel(CostModel(config.template), table,
                           torch_detector_timer(args.device, repeats=args.timing_repeats, clock=args.clock))
    base_name = f"{config.template.base_model} (shipped)"
    references = {"seed": config.space.seed(), base_name: shipped_structure(config.template.base)}
    logger.info("latency table %s; calibrating on %s", table.path, list(references))
    calibration = latency.calibrate(references, refresh=args.recalibrate)
    table.save()
    logger.info("calibration scale %.3f", calibration.scale)
    if args.budget_latency_ms == "base":
        measured = float(latency.measure_ms(references[base_name])["median_ms"])
        logger.info("latency budget: %s measures %.2f ms here", base_name, measured)
        config = config_from_args(args, base_latency_ms=measured)
    search = EvolutionSearch(config, latency, state_path=state, progress=not args.quiet)
    search_started = time.perf_counter()
    search.run()
    search_wall = time.perf_counter() - search_started
    winner, finalists = choose_winner(search)
    if winner is None:
        raise ValueError("The search found no structure within the budgets.")
    refs = [evaluate_reference(search, name, s) for name, s in references.items()]
    total_wall = time.perf_counter() - started
    paths = export_search(out, search, winner, finalists, refs, name=args.name, command=command,
                          total_wall_s=total_wall)
    summary: Dict[str, Any] = {
        "out": str(out), "winner": winner.candidate.key, "score": winner.candidate.score,
        "predicted_ms": winner.candidate.latency_ms, "measured_ms": winner.measured_ms,
        "within_budget": winner.within_budget, "gflops": winner.candidate.gflops,
        "params_m": (winner.candidate.params or 0) / 1e6, "search_s": search_wall, "total_s": total_wall,
        "references": [r.to_dict() for r in refs], "files": {k: str(v) for k, v in paths.items()},
        "latency_table": str(table.path), "layers_timed_this_run": table.timed,
    }
    if args.push_to_hub:
        summary["published"] = publish_config(out, args.push_to_hub, hub=args.hub, dry_run=args.dry_run)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``recipes/nas.py``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = "python recipes/nas.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        summary = run(args, command)
    except KeyboardInterrupt:
        print(f"\nInterrupted; the search state is in {Path(args.out) / STATE_NAME}. Run the same command with "
              f"--resume to continue.", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"winner  score {summary['score']:.4f}  predicted {summary['predicted_ms']:.2f} ms  measured "
          f"{summary['measured_ms']:.2f} ms  {summary['gflops']:.2f} GFLOPs  {summary['params_m']:.2f} M params"
          + ("" if summary["within_budget"] else "  (OVER the latency budget when measured)"))
    for ref in summary["references"]:
        measured = "–" if ref["measured_ms"] is None else f"{ref['measured_ms']:.2f}"
        print(f"{ref['name']:<24} score {ref['score']:.4f}  predicted {ref['predicted_ms']:.2f} ms  measured "
              f"{measured} ms  {ref['gflops']:.2f} GFLOPs  {ref['params_m']:.2f} M params")
    print(f"search {summary['search_s']:.1f} s, total {summary['total_s']:.1f} s; {summary['layers_timed_this_run']} "
          f"layer shapes timed into {summary['latency_table']}")
    print(f"wrote {', '.join(summary['files'])} to {summary['out']}")
    if "published" in summary:
        print(f"published: {summary['published']}")
    print(f"train it: python recipes/finetune.py --model {Path(summary['out']) / 'config.json'} --data <dataset> "
          f"--pretrained none --out <run folder>")
    return 0
