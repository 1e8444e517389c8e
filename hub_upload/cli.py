"""``python -m hub_upload``: publish DAMO-YOLO models to the Hugging Face Hub, ModelScope or a local registry.

Commands::

    push SOURCE --repo-id ORG/NAME [--hub hf|modelscope|DIR] [--private] [--dry-run] [--token TOKEN]
    convert-official FILE.pth --model damoyolo-t --out DIR [--tag distill|plain] [--repo-id ORG/NAME]
    card FOLDER [--repo-id ORG/NAME]          re-render a hub folder's README.md from its config.json
    zoo-cards [--out model_cards]             render the cards of the official zoo

Exit codes: 0 success, 1 the hub refused or could not be reached, 2 bad input.
Tokens are read from ``--token`` or ``HF_TOKEN`` / ``MODELSCOPE_API_TOKEN`` and never printed.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from damo_pipeline.hub import execute_plan, plan_push, render_card
from damo_pipeline.hub.hub_format import CARD_NAME, atomic_write_text

from .official import convert_official, render_zoo_cards
from .sources import build_hub_folder

logger = logging.getLogger("hub_upload")


def _class_names(args: argparse.Namespace) -> Optional[List[str]]:
    if args.class_names_file:
        lines = Path(args.class_names_file).read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip()]
    if args.class_names:
        return [n.strip() for n in args.class_names.split(",") if n.strip()]
    return None


def _metrics(path: Optional[str]) -> Optional[Dict[str, float]]:
    if not path:
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data = data.get("metrics", data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise ValueError(f"--metrics {path}: expected a JSON object of name -> number.")
    return {k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _default_out(source: Path) -> Path:
    return source / "hub" if source.is_dir() else source.with_name(f"{source.stem}-hub")


def cmd_push(args: argparse.Namespace) -> int:
    source = Path(args.source)
    out = Path(args.out) if args.out else _default_out(source)
    folder = build_hub_folder(source, out, class_names=_class_names(args), metrics=_metrics(args.metrics),
                              dataset=args.dataset, base_model=args.base_model, repo_id=args.repo_id,
                              compute_profile=not args.no_profile)
    with plan_push(folder, args.repo_id, hub=args.hub, private=args.private,
                   commit_message=args.commit_message) as plan:
        print(f"hub folder: {folder}")
        if args.dry_run:
            print("DRY RUN: nothing is sent or written to the target.")
            print(plan.describe())
            return 0
        print(plan.describe().replace("Would ", "Will ", 2))
        target = execute_plan(plan, token=args.token)
    print(f"published: {target}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    folder = convert_official(args.checkpoint, args.model, args.out, tag=args.tag, repo_id=args.repo_id,
                              compute_profile=not args.no_profile)
    print(f"wrote {folder}: {', '.join(sorted(p.name for p in folder.iterdir() if p.is_file()))}")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    atomic_write_text(folder / CARD_NAME, render_card(folder, repo_id=args.repo_id))
    print(f"wrote {folder / CARD_NAME}")
    return 0


def cmd_zoo_cards(args: argparse.Namespace) -> int:
    for path in render_zoo_cards(args.out):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hub_upload", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    push = sub.add_parser("push", help="build a hub folder from SOURCE and publish it")
    push.add_argument("source", help="a training run folder, a checkpoint file or a hub folder")
    push.add_argument("--repo-id", required=True, help="ORG/NAME")
    push.add_argument("--hub", default="hf", help="hf (default), modelscope, or a local registry folder DIR")
    push.add_argument("--private", action="store_true", help="create a new hub repo as private")
    push.add_argument("--dry-run", action="store_true", help="build the folder, print the files and the commit, "
                                                             "send nothing")
    push.add_argument("--token", help="hub token (default: HF_TOKEN / MODELSCOPE_API_TOKEN or a saved login)")
    push.add_argument("--out", help="where to build the hub folder (default: SOURCE/hub or FILE-hub)")
    push.add_argument("--class-names", help="comma-separated class names (overrides the checkpoint's)")
    push.add_argument("--class-names-file", help="text file, one class name per line")
    push.add_argument("--metrics", help="JSON file of evaluation results, name -> number")
    push.add_argument("--dataset", help="dataset name or hub dataset id for the card")
    push.add_argument("--base-model", help="weights the training started from (for the card)")
    push.add_argument("--commit-message", help="commit message (default names the architecture)")
    push.add_argument("--no-profile", action="store_true", help="skip measuring params/GFLOPs for the card")
    push.set_defaults(run=cmd_push)

    convert = sub.add_parser("convert-official", help="official release .pth -> hub folder with its card")
    convert.add_argument("checkpoint", help="the official .pth file")
    convert.add_argument("--model", required=True, help="zoo id, e.g. damoyolo-t")
    convert.add_argument("--out", required=True, help="hub folder to write")
    convert.add_argument("--tag", choices=["distill", "plain"], help="which weight set (default: from the file name)")
    convert.add_argument("--repo-id", help="ORG/NAME it will be published as (for the card)")
    convert.add_argument("--no-profile", action="store_true", help="skip measuring params/GFLOPs")
    convert.set_defaults(run=cmd_convert)

    card = sub.add_parser("card", help="re-render a hub folder's README.md from its config.json")
    card.add_argument("folder")
    card.add_argument("--repo-id", help="ORG/NAME for the usage snippet")
    card.set_defaults(run=cmd_card)

    zoo = sub.add_parser("zoo-cards", help="render the official zoo's model cards")
    zoo.add_argument("--out", default="model_cards", help="destination folder (default: model_cards)")
    zoo.set_defaults(run=cmd_zoo_cards)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m hub_upload``; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError, TypeError) as e:
        print(f"hub_upload {args.command}: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # network / hub errors from the clients (httpx, requests and hub errors are OSErrors)
        print(f"hub_upload {args.command}: the hub could not complete the request: {e}", file=sys.stderr)
        return 1
