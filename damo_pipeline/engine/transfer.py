"""Starting a fine-tune from pretrained weights (``spec/training.md`` §9, upstream ``load_pretrain_detector``).

Every backbone and neck tensor is copied. The head is copied too when the pretrained model predicts the
same classes (same names, same order); otherwise it keeps its fresh initialisation (class prior bias,
N(0, 0.01) weights), exactly as the official fine-tune does for all head tensors.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from ..models import Detector
from ..models.checkpoint import CheckpointMismatchError, diff_state_dict

logger = logging.getLogger(__name__)

__all__ = ["TransferReport", "load_pretrained_into", "transfer_weights"]

HEAD_PREFIX = "head."


@dataclass(frozen=True)
class TransferReport:
    """What :func:`transfer_weights` did.

    Attributes:
        source: description of the weights.
        copied: number of tensors copied.
        head_reinitialised: True when the head kept its fresh initialisation.
        reason: why the head was (or was not) re-initialised.
    """

    source: str
    copied: int
    head_reinitialised: bool
    reason: str


def transfer_weights(model: Detector, source_state: Dict[str, torch.Tensor], source_classes: List[str],
                     source: str = "pretrained weights") -> TransferReport:
    """Copy pretrained tensors into ``model`` (in place).

    Args:
        model: the detector to fine-tune (its config holds the new class names).
        source_state: the pretrained ``state_dict`` (training form).
        source_classes: the pretrained model's class names.
        source: description for logs and errors.

    Raises:
        CheckpointMismatchError: the non-head tensors do not fit (a different architecture); the message
            lists the differing keys.
    """
    target_state = model.state_dict()
    same_classes = list(source_classes) == list(model.class_names)
    keys = [k for k in target_state if same_classes or not k.startswith(HEAD_PREFIX)]
    expected = {k: tuple(target_state[k].shape) for k in keys}
    offered = {k: v for k, v in source_state.items() if same_classes or not k.startswith(HEAD_PREFIX)}
    diff = diff_state_dict(expected, offered)
    if not diff.ok:
        raise CheckpointMismatchError(
            f"{source} does not fit {model.config.name!r} outside the head: {diff.describe()}. Pick pretrained "
            f"weights of the same architecture (--pretrained), or train from scratch (--pretrained none).")
    with torch.no_grad():
        for key in keys:
            target_state[key].copy_(offered[key].to(dtype=target_state[key].dtype))
    if same_classes:
        reason = "the pretrained model predicts the same classes"
    elif len(source_classes) != model.num_classes:
        reason = f"{len(source_classes)} pretrained classes vs {model.num_classes} in the dataset"
    else:
        reason = "the class names differ from the pretrained model's"
    report = TransferReport(source, len(keys), not same_classes, reason)
    logger.info("Copied %d tensors from %s; head %s (%s).", report.copied, source,
                "re-initialised" if report.head_reinitialised else "kept", reason)
    return report


def load_pretrained_into(model: Detector, spec: Optional[str], explicit: bool) -> Optional[TransferReport]:
    """Load pretrained weights named by ``spec`` into ``model`` with :func:`transfer_weights`.

    Args:
        model: the detector to fine-tune.
        spec: anything :func:`damo_pipeline.hub.load_detector` accepts (zoo id, hub id, folder, file);
            ``None``/``"none"``/``"scratch"`` trains from scratch.
        explicit: the user named ``spec``; then failure to get the weights is an error. Otherwise (the
            default zoo weights) it is a warning and training starts from scratch.

    Returns:
        The transfer report, or None when training from scratch.

    Raises:
        FileNotFoundError (``WeightsNotFoundError``): explicit weights that cannot be found.
        CheckpointMismatchError: weights of another architecture.
    """
    if spec is None or str(spec).lower() in ("none", "scratch", ""):
        logger.info("Training from scratch (no pretrained weights).")
        return None
    from ..hub import load_detector
    from ..hub.errors import DownloadError

    try:
        pretrained = load_detector(spec)
    except (FileNotFoundError, DownloadError) as e:
        if explicit:
            raise
        logger.warning("Could not get the default pretrained weights %r, so training starts FROM SCRATCH "
                       "(expect a much lower AP than a fine-tune). Pass --pretrained FILE|FOLDER with local weights, "
                       "or --pretrained none to silence this. Reason: %s", spec, e)
        return None
    return transfer_weights(model, pretrained.state_dict(), pretrained.class_names, source=str(spec))
