"""Loading weights from where they are published, and publishing new ones.

* :func:`load_detector` resolves a ``model=`` value (local path, URL, zoo id, ``hf://``, ``ms://``,
  ``org/name``) to a :class:`~damo_pipeline.models.Detector` with its weights.
* :func:`save_pretrained` writes the hub format (``config.json``, ``model.safetensors``, ``README.md``,
  ``configuration.json``); :func:`push_to_hub` publishes such a folder to the Hugging Face Hub,
  ModelScope or a local registry folder.
"""
from .cache import cache_root, offline_mode, url_cache_path
from .card import CardContext, build_model_card
from .download import download_url
from .errors import ChecksumMismatchError, DownloadError, WeightsNotFoundError
from .hub_format import is_hub_folder, load_folder, read_hub_config, render_card, save_pretrained
from .loading import load_detector
from .publish import PublishPlan, execute_plan, plan_push, push_to_hub
from .resolve import Resolved, resolve_model

__all__ = [
    "CardContext", "ChecksumMismatchError", "DownloadError", "PublishPlan", "Resolved", "WeightsNotFoundError",
    "build_model_card", "cache_root", "download_url", "execute_plan", "is_hub_folder", "load_detector", "load_folder",
    "offline_mode", "plan_push", "push_to_hub", "read_hub_config", "render_card", "resolve_model",
    "save_pretrained", "url_cache_path",
]
