"""Training checkpoints: atomic writes, safe reads, RNG state capture.

A training checkpoint (``last.pt`` / ``best.pt``) is a ``torch.save``d dict holding only tensors and
JSON-like values, so it loads with ``torch.load(weights_only=True)``:

* ``model``: the weights to use (the EMA when EMA is on, as upstream), so ``load_detector("best.pt")`` and
  the official tools read it directly;
* ``student``: the raw trained weights; ``optimizer``, ``scaler``, ``schedule``, ``plugins``;
* ``epoch`` (completed epochs), ``iteration`` (global optimizer steps), ``epoch_step`` (micro-batches
  consumed in the current, unfinished epoch; 0 at epoch boundaries), ``best_ap``, ``history``;
* ``train_config``, ``model_config`` (dicts), ``class_names``, ``category_ids`` (the dataset's label ->
  COCO category id mapping);
* ``rng``: torch (CPU and CUDA), numpy and python RNG states as tensors and lists.
"""
from __future__ import annotations

import logging
import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any, Dict, Union

import numpy as np
import torch

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_FORMAT", "capture_rng_state", "load_training_checkpoint", "restore_rng_state",
           "save_atomic"]

CHECKPOINT_FORMAT = "damo_pipeline.train/1"
PathLike = Union[str, Path]


def save_atomic(obj: Any, path: PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, flush it to disk, then ``os.replace``.

    A crash or exception while writing leaves any previous ``path`` untouched and removes the
    temporary file.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path


def load_training_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint written by the trainer (``weights_only=True``, on CPU).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a damo_pipeline training checkpoint (the message says what it is).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Training checkpoint {str(path)!r} does not exist; check the run folder "
                                f"(it holds last.pt once an epoch has finished).")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"Refused to load {str(path)!r}: it is not a weights-only torch checkpoint (not a "
                         f"checkpoint at all, or it holds Python objects other than tensors): {e}") from e
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{str(path)!r} is not a readable checkpoint (truncated?): {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is not a damo_pipeline training checkpoint (no format "
                         f"{CHECKPOINT_FORMAT!r}); to start from its weights use --pretrained instead of --resume.")
    return ckpt


def capture_rng_state() -> Dict[str, Any]:
    """torch CPU/CUDA, numpy and python RNG states as tensors and lists (``weights_only``-loadable)."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(np_name), "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "python": {"version": int(py_version), "internal": list(py_internal), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` captured (CUDA only when devices match)."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["name"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    py_state = state["python"]
    random.setstate((py_state["version"], tuple(py_state["internal"]), py_state["gauss"]))
    cuda_states = state.get("cuda")
    if cuda_states is not None and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
