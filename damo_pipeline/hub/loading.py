"""load_detector: turn a ``model=`` / ``checkpoint=`` pair into a Detector with its weights loaded.

This is the single entry point the pipeline and the recipes use. :mod:`damo_pipeline.hub.resolve`
finds the files (local, cache, URL, Hugging Face, ModelScope, local registry); this module decides
how to read what was found:

* a hub folder (``config.json`` with ``model_config`` + ``model.safetensors``): :func:`load_folder`;
* any other folder with a checkpoint (the official ModelScope layout): architecture recognised from the
  checkpoint keys, class names from data files (:mod:`damo_pipeline.hub.official`);
* a checkpoint file: architecture recognised from its keys, or the zoo architecture it was asked for.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Union

from ..models import Detector, ModelConfig, build_model, get_model_config, load_checkpoint, recognize_checkpoint
from ..models.checkpoint import build_from_checkpoint, load_state_dict_file
from .errors import WeightsNotFoundError
from .hub_format import CONFIG_NAME, is_hub_folder, load_folder, read_hub_config
from .official import ZooWeights, load_checkpoint_folder, parse_zoo_spec
from .resolve import resolve_model

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

__all__ = ["load_detector", "load_folder"]


def _architecture(model: str, *, revision: Optional[str], cache_dir: Optional[PathLike],
                  local_files_only: Optional[bool], token: Optional[str]) -> ModelConfig:
    """The architecture named by ``model`` when weights come from elsewhere (``checkpoint=``)."""
    zoo = parse_zoo_spec(model)
    if zoo is not None:
        return get_model_config(zoo.name)
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".json":
        return ModelConfig.from_json(path)
    if path.is_dir() or "/" in model:
        folder = path if path.is_dir() else resolve_model(model, revision=revision, cache_dir=cache_dir,
                                                          local_files_only=local_files_only, token=token).path
        if folder.is_dir() and (folder / CONFIG_NAME).is_file():
            return ModelConfig.from_dict(read_hub_config(folder)["model_config"])
    raise ValueError(f"With checkpoint=..., model must name an architecture: a zoo id, a config .json file or a "
                     f"model folder with {CONFIG_NAME}; got {model!r}.")


def _load_into(config: ModelConfig, checkpoint: Path) -> Detector:
    """Strictly load ``checkpoint`` into ``config``'s architecture; a different class count is adopted."""
    state_dict = load_state_dict_file(checkpoint)
    model = build_model(config)
    weight = state_dict.get("head.gfl_cls.0.weight")
    expected = model.state_dict().get("head.gfl_cls.0.weight")
    if weight is not None and expected is not None and weight.shape[0] != expected.shape[0]:
        found = recognize_checkpoint(state_dict)
        if found.name == config.name or found.exact:
            logger.info("%s has %d classes, not %d: building that head", checkpoint, found.num_classes,
                        config.num_classes)
            model = build_model(config, num_classes=found.num_classes, head={"legacy": found.legacy})
    return load_checkpoint(model, state_dict)


def _read_resolved(path: Path, spec: str) -> Detector:
    if path.is_dir():
        if is_hub_folder(path):
            return load_folder(path)
        try:
            return load_checkpoint_folder(path)
        except FileNotFoundError as e:
            raise WeightsNotFoundError(spec, [(f"folder {str(path)!r}", f"no {CONFIG_NAME} with model_config, "
                                                                          f"and {e}")]) from e
    if path.suffix == ".json":
        raise WeightsNotFoundError(spec, [(f"config file {str(path)!r}", "a config holds no weights; pass "
                                                                         "checkpoint=... or use build_model()")])
    return build_from_checkpoint(path).eval()


def _load_resolved(path: Path, zoo: Optional[ZooWeights], spec: str) -> Detector:
    model = _read_resolved(path, spec)
    if zoo is not None and model.config.name != zoo.name:
        raise ValueError(f"The weights found for {zoo.spec} at {path} are a {model.config.name} checkpoint, not "
                         f"{zoo.name}; delete that file or folder so it is fetched again.")
    return model


def load_detector(model: PathLike, checkpoint: Optional[PathLike] = None, *, revision: Optional[str] = None,
                  cache_dir: Optional[PathLike] = None, local_files_only: Optional[bool] = None,
                  token: Optional[str] = None) -> Detector:
    """A Detector (training form, weights loaded, eval mode) for ``model`` and optional ``checkpoint``.

    Args:
        model: where the model comes from (see :func:`damo_pipeline.hub.resolve_model`): a local hub
            folder, official-layout folder or checkpoint file; an ``http(s)`` URL of a ``.pth``; a zoo id
            (``damoyolo-t``, ``damoyolo-t.plain``); ``hf://org/name[@rev]``; ``ms://org/name[@rev]``; or a
            bare ``org/name[@rev]`` (local registries, then the hubs in ``DAMO_PIPELINE_HUB_ORDER``).
        checkpoint: weights for the architecture named by ``model`` (a zoo id, a config ``.json`` or a
            model folder): a local file or an ``http(s)`` URL. A checkpoint with another class count
            (a fine-tuned head) is loaded into that architecture with its own class count.
        revision: hub branch, tag or commit.
        cache_dir: cache root for the hub clients and URL downloads (default: their standard caches).
        local_files_only: never connect (default: ``DAMO_PIPELINE_OFFLINE`` / ``HF_HUB_OFFLINE``).
        token: hub token (default: ``HF_TOKEN`` / ``MODELSCOPE_API_TOKEN`` / a saved login); never logged.

    Returns:
        The :class:`Detector` in training form (not fused), in eval mode; call ``.train()`` to fine-tune.

    Raises:
        WeightsNotFoundError: no weights could be found; the message lists every source tried and how to
            provide weights.
        CheckpointMismatchError: the weights do not fit the architecture.
        ValueError: a ``model`` value of no known form.
    """
    spec = str(model)
    options = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token)
    if checkpoint is not None:
        config = _architecture(spec, **options)
        ckpt_spec = str(checkpoint)
        if Path(ckpt_spec).expanduser().is_file():
            ckpt = Path(ckpt_spec).expanduser()
        elif ckpt_spec.lower().startswith(("http://", "https://")):
            ckpt = resolve_model(ckpt_spec, **options).path
        else:
            raise WeightsNotFoundError(spec, [(f"checkpoint {ckpt_spec!r}", "no such file")])
        return _load_into(config, ckpt).eval()
    resolved = resolve_model(spec, **options)
    logger.info("Loading %s from %s", spec, resolved.source)
    return _load_resolved(resolved.path, resolved.zoo, spec)
