"""The official DAMO-YOLO zoo on the hubs: converted release files and their model cards.

``convert_official`` turns an official release ``.pth`` into a hub folder (weights checked strictly
against the architecture, read with ``weights_only=True``); ``render_zoo_cards`` writes the cards of all
eleven published weight sets (T, T*, S, S*, M, M*, L, L*, Ns, Nm, Nl) into ``model_cards/``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from damo_pipeline.hub import CardContext, build_model_card, save_pretrained
from damo_pipeline.hub.download import sha256_of
from damo_pipeline.hub.hub_format import atomic_write_text
from damo_pipeline.hub.official import ZooWeights, parse_zoo_spec
from damo_pipeline.models import ZOO_CARDS, build_model, get_model_config, list_models, load_checkpoint

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
ZOO_README = "https://github.com/tinyvision/DAMO-YOLO#model-zoo"
OFFICIAL_TRAINING = {
    "recipe": "official DAMO-YOLO (tinyvision/DAMO-YOLO v0.3.1)",
    "data": "COCO train2017 (118,287 images)",
    "epochs": 300,
    "global batch size": 256,
}


def display_name(zoo: ZooWeights) -> str:
    """``DAMO-YOLO-T*`` style name (``*`` marks distilled weights, as in the official README)."""
    size = zoo.name.split("-", 1)[1]
    size = size.upper() if len(size) == 1 else size[0].upper() + size[1:]
    return f"DAMO-YOLO-{size}{'*' if zoo.tag == 'distill' else ''}"


def official_figures(zoo: ZooWeights, sha256: Optional[str] = None) -> Dict[str, Any]:
    """The official README figures of one weight set, for :class:`CardContext.official`."""
    card = ZOO_CARDS[zoo.name]
    figures = {"coco_map": zoo.pretrained.coco_map, "latency_ms": card.latency_ms,
               "latency_device": card.latency_device, "gflops": card.gflops, "params_m": card.params_m,
               "teacher": zoo.pretrained.teacher, "source_url": ZOO_README, "release_url": zoo.pretrained.url,
               "sha256": sha256 or zoo.pretrained.sha256}
    return {k: v for k, v in figures.items() if v is not None}


def zoo_card_context(spec: str, *, sha256: Optional[str] = None, repo_id: Optional[str] = None) -> CardContext:
    """The card inputs of an official weight set (``damoyolo-t.distill``, ``damoyolo-ns.plain``, ...).

    Raises:
        ValueError: not a published zoo weight set.
    """
    zoo = parse_zoo_spec(spec)
    if zoo is None:
        raise ValueError(f"{spec!r} is not a zoo id; known: {list_models()} (with .distill / .plain).")
    config = get_model_config(zoo.name)
    name = display_name(zoo)
    teacher = f", distilled from {zoo.pretrained.teacher}" if zoo.pretrained.teacher else ""
    description = (
        f"{name}: the official DAMO-YOLO weights{teacher}, trained on COCO 2017 by Alibaba DAMO Academy and "
        f"converted to safetensors for `damo_pipeline` without any change to the numbers. "
        f"{zoo.pretrained.coco_map} mAP@[.5:.95] on COCO val2017 at {config.img_size}×{config.img_size}.")
    training = dict(OFFICIAL_TRAINING)
    if zoo.pretrained.teacher:
        training["teacher"] = f"{zoo.pretrained.teacher} (feature distillation)"
    return CardContext(model_config=config.to_dict(), repo_id=repo_id or zoo.spec, title=name,
                       metrics={"mAP": zoo.pretrained.coco_map}, dataset="coco", metrics_split="val2017",
                       training=training, official=official_figures(zoo, sha256), description=description)


def render_zoo_cards(dest: PathLike) -> List[Path]:
    """Write ``dest/<zoo id>.<tag>/README.md`` for every published weight set; returns the paths."""
    dest = Path(dest)
    written = []
    for name in list_models():
        for tag in ZOO_CARDS[name].weights:
            spec = f"{name}.{tag}"
            folder = dest / spec
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(folder / "README.md", str(build_model_card(zoo_card_context(spec))))
            written.append(folder / "README.md")
    return written


def _tag_for_file(name: str, path: Path) -> str:
    for tag, cfg in ZOO_CARDS[name].weights.items():
        if cfg.url.rsplit("/", 1)[-1] == path.name:
            return tag
    return next(iter(ZOO_CARDS[name].weights))


def convert_official(checkpoint: PathLike, model: str, out: PathLike, *, tag: Optional[str] = None,
                     repo_id: Optional[str] = None, compute_profile: bool = True) -> Path:
    """Convert an official release ``.pth`` of zoo model ``model`` into a hub folder ``out``.

    Args:
        checkpoint: the release file (``{'model': state_dict, ...}`` or a bare state dict).
        model: zoo id, e.g. ``damoyolo-t``.
        out: the hub folder to write.
        tag: ``distill`` or ``plain``; default from the file name (the release names), else the best set.
        repo_id: where the folder will be published (for the card's usage snippet).
        compute_profile: also measure params and GFLOPs for the card.

    Raises:
        FileNotFoundError: no such file. ValueError: unknown model or tag.
        CheckpointMismatchError: the file is not a ``model`` checkpoint (the message names what it fits).
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"Official checkpoint {str(checkpoint)!r} does not exist.")
    zoo = parse_zoo_spec(model if tag is None else f"{model}.{tag}")
    if zoo is None:
        raise ValueError(f"--model must be a zoo id, one of {list_models()}; got {model!r}.")
    if tag is None:
        zoo = parse_zoo_spec(f"{zoo.name}.{_tag_for_file(zoo.name, checkpoint)}")
    digest = sha256_of(checkpoint)
    if zoo.pretrained.sha256 and digest != zoo.pretrained.sha256:
        logger.warning("%s has sha256 %s, not the recorded %s for %s", checkpoint, digest, zoo.pretrained.sha256,
                       zoo.spec)
    detector = load_checkpoint(build_model(zoo.name), checkpoint)
    context = zoo_card_context(zoo.spec, sha256=digest, repo_id=repo_id)
    return save_pretrained(detector, out, metrics=context.metrics, dataset=context.dataset,
                           training=context.training, official=context.official, repo_id=context.repo_id,
                           description=context.description, metrics_split=context.metrics_split,
                           compute_profile=compute_profile, title=context.title)
