"""Publishing scripts for DAMO-YOLO models: ``python -m hub_upload push|convert-official|card|zoo-cards``.

The same operations as functions: :func:`build_hub_folder` (training run, checkpoint or hub folder ->
hub folder), :func:`push` (build + publish), :func:`convert_official` and :func:`render_zoo_cards`.
"""
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from damo_pipeline.hub import push_to_hub

from .official import convert_official, render_zoo_cards, zoo_card_context
from .sources import build_hub_folder


def push(source: Union[str, Path], repo_id: str, *, hub: Union[str, Path] = "hf", private: bool = False,
         token: Optional[str] = None, dry_run: bool = False, out: Optional[Union[str, Path]] = None,
         class_names: Optional[Sequence[str]] = None, metrics: Optional[Dict[str, float]] = None,
         dataset: Optional[str] = None, base_model: Optional[str] = None) -> str:
    """Build the hub folder for ``source`` (see :func:`build_hub_folder`) and publish it (see
    :func:`damo_pipeline.hub.push_to_hub`). Returns the repo URL or the registry folder."""
    source = Path(source)
    out = Path(out) if out is not None else (source / "hub" if source.is_dir() else
                                             source.with_name(f"{source.stem}-hub"))
    folder = build_hub_folder(source, out, class_names=class_names, metrics=metrics, dataset=dataset,
                              base_model=base_model, repo_id=repo_id)
    return push_to_hub(folder, repo_id, hub=hub, private=private, token=token, dry_run=dry_run)


__all__ = ["build_hub_folder", "convert_official", "push", "render_zoo_cards", "zoo_card_context"]
