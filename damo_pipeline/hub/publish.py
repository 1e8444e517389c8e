"""Publishing a hub folder: to the Hugging Face Hub, to ModelScope, or into a local registry folder.

:func:`plan_push` checks the folder and stages exactly the files that would be committed (the card is
rendered again with the repo id in its usage snippet); :func:`push_to_hub` then uploads them with the
real clients (``HfApi.create_repo`` + ``upload_folder``; ModelScope ``HubApi.create_repo`` +
``upload_folder``) or copies them atomically to ``DIR/org/name``. ``dry_run`` stops after the plan.
Tokens come from the argument or the clients' standard environment variables (``HF_TOKEN``,
``MODELSCOPE_API_TOKEN``) and are never logged, printed or written.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from ..version import __version__
from .card import GENERATED_MARKER
from .hub_format import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, read_hub_config, render_card
from .remote import get_hub
from .resolve import REPO_ID

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
HUB_ALIASES = {"hf": "hf", "huggingface": "hf", "hugging-face": "hf", "ms": "ms", "modelscope": "ms"}
SKIPPED_SUFFIXES = (".part", ".lock", ".tmp")


@dataclass
class PublishPlan:
    """What a push would do.

    Attributes:
        hub: ``hf``, ``ms`` or ``dir``.
        repo_id: ``org/name``.
        target: the repo URL, or the registry folder for ``dir``.
        files: ``(path in repo, size in bytes, sha256)`` for every file, sorted.
        commit_message: the commit (hubs) or the note logged (registry).
        private: whether a new hub repo is created private.
        staged: the folder holding exactly those files (temporary).
    """

    hub: str
    repo_id: str
    target: str
    files: List[Tuple[str, int, str]]
    commit_message: str
    private: bool
    staged: Path = field(repr=False)

    def describe(self) -> str:
        """Human summary: the repo, the commit and every file (what ``--dry-run`` prints)."""
        if self.hub == "dir":
            head = [f"Would publish {self.repo_id} into the local registry folder {self.target}",
                    f"(replacing it atomically if it exists): {self.commit_message}"]
        else:
            display = get_hub(self.hub).display
            head = [f"Would create the {display} model repo {self.repo_id} ({self.target}) if it does not exist, "
                    f"{'private' if self.private else 'public'}",
                    f"Would commit {len(self.files)} files to {self.repo_id}: {self.commit_message!r}"]
        rows = [f"  {name:<24} {size:>12,d} bytes  sha256 {digest}" for name, size, digest in self.files]
        total = sum(size for _, size, _ in self.files)
        return "\n".join(head + rows + [f"  total {total:,d} bytes"])

    def cleanup(self) -> None:
        """Remove the staged copy."""
        shutil.rmtree(self.staged, ignore_errors=True)

    def __enter__(self) -> "PublishPlan":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def normalise_hub(hub: PathLike) -> Tuple[str, Optional[Path]]:
    """``hf``/``modelscope``/... -> (key, None); anything else is a registry folder -> (``dir``, path)."""
    key = HUB_ALIASES.get(str(hub).strip().lower())
    if key is not None and not isinstance(hub, Path):
        return key, None
    return "dir", Path(hub).expanduser()


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts) \
                and not path.name.endswith(SKIPPED_SUFFIXES):
            yield path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _check_folder(folder: Path) -> dict:
    if not folder.is_dir():
        raise FileNotFoundError(f"Nothing to publish: {str(folder)!r} is not a folder. Build one with "
                                f"damo_pipeline.hub.save_pretrained() or `python -m hub_upload push SOURCE`.")
    config = read_hub_config(folder)
    if config.get("has_weights", True) and not (folder / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{str(folder)!r} has a {CONFIG_NAME} with weights but no {WEIGHTS_NAME}.")
    return config


def plan_push(folder: PathLike, repo_id: str, *, hub: PathLike = "hf", private: bool = False,
              commit_message: Optional[str] = None, staging_dir: Optional[PathLike] = None) -> PublishPlan:
    """Check ``folder`` and stage the files a push would commit (nothing is sent).

    Args:
        folder: a hub folder (``damo_pipeline.hub.save_pretrained`` output).
        repo_id: ``org/name``.
        hub: ``hf`` / ``huggingface``, ``ms`` / ``modelscope``, or a local registry folder.
        private: create a new hub repo as private.
        commit_message: default ``Upload <architecture> (<K> classes) with damo_pipeline <version>``.
        staging_dir: where to stage (default: a new temporary folder beside ``folder``); the caller removes it.

    Raises:
        ValueError: a malformed ``repo_id`` or ``config.json``. FileNotFoundError: not a hub folder.
    """
    folder = Path(folder)
    if not isinstance(repo_id, str) or not REPO_ID.match(repo_id):
        raise ValueError(f"repo_id must look like 'org/name' (letters, digits, '-', '_', '.'), got {repo_id!r}.")
    config = _check_folder(folder)
    key, registry = normalise_hub(hub)
    staged = Path(staging_dir) if staging_dir is not None else Path(
        tempfile.mkdtemp(prefix=".push-", dir=str(folder.parent) if os.access(folder.parent, os.W_OK) else None))
    for path in _files(folder):
        rel = path.relative_to(folder)
        if rel.as_posix() == CARD_NAME and GENERATED_MARKER in path.read_text(encoding="utf-8", errors="replace"):
            (staged / rel).write_text(render_card(folder, repo_id=repo_id), encoding="utf-8")
        else:
            _link_or_copy(path, staged / rel)
    files = [(p.relative_to(staged).as_posix(), p.stat().st_size, _sha256(p)) for p in _files(staged)]
    message = commit_message or (f"Upload {config.get('architecture', 'model')} ({config.get('num_classes')} classes) "
                                 f"with damo_pipeline {__version__}")
    target = str(registry / repo_id) if key == "dir" else get_hub(key).url(repo_id)
    return PublishPlan(key, repo_id, target, files, message, private, staged)


def _publish_to_registry(plan: PublishPlan) -> str:
    target = Path(plan.target)
    target.parent.mkdir(parents=True, exist_ok=True)
    incoming = target.parent / f".{target.name}.incoming-{uuid.uuid4().hex[:8]}"
    shutil.copytree(plan.staged, incoming, copy_function=lambda s, d: _link_or_copy(Path(s), Path(d)))
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(incoming, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("Published %s into %s", plan.repo_id, target)
    return str(target)


def _publish_to_hf(plan: PublishPlan, token: Optional[str]) -> str:
    from huggingface_hub import HfApi

    api = HfApi(token=token, library_name="damo_pipeline", library_version=__version__)
    repo_url = api.create_repo(plan.repo_id, repo_type="model", private=plan.private, exist_ok=True)
    commit = api.upload_folder(repo_id=plan.repo_id, repo_type="model", folder_path=str(plan.staged),
                               commit_message=plan.commit_message)
    logger.info("Pushed %s to the Hugging Face Hub: %s", plan.repo_id, commit.commit_url)
    return str(getattr(repo_url, "url", None) or plan.target)


def _publish_to_modelscope(plan: PublishPlan, token: Optional[str]) -> str:
    from modelscope.hub.api import HubApi

    api = HubApi(token=token) if token else HubApi()
    api.create_repo(plan.repo_id, token=token, visibility="private" if plan.private else "public", exist_ok=True)
    api.upload_folder(repo_id=plan.repo_id, folder_path=str(plan.staged), commit_message=plan.commit_message,
                      token=token)
    logger.info("Pushed %s to ModelScope: %s", plan.repo_id, plan.target)
    return plan.target


def push_to_hub(folder: PathLike, repo_id: str, *, hub: PathLike = "hf", private: bool = False,
                token: Optional[str] = None, dry_run: bool = False, commit_message: Optional[str] = None) -> str:
    """Publish a hub folder as ``repo_id``.

    Args:
        folder: a hub folder written by :func:`damo_pipeline.hub.save_pretrained`.
        repo_id: ``org/name``.
        hub: ``"hf"`` (Hugging Face Hub), ``"modelscope"`` (or ``"ms"``), or a local registry folder
            ``DIR`` (the model lands in ``DIR/org/name``, which ``load_detector`` and
            ``pipeline(model=...)`` load directly). A folder literally named ``hf`` is ``Path("hf")`` or ``"./hf"``.
        private: create a new hub repo as private.
        token: hub token; default ``HF_TOKEN`` / ``MODELSCOPE_API_TOKEN`` or a saved login. Never logged.
        dry_run: stage and describe (logged at INFO) but send and write nothing.
        commit_message: the commit message (default names the architecture and version).

    Returns:
        The repo URL, or the registry folder path for a local registry.

    Raises:
        ValueError / FileNotFoundError: a bad ``repo_id`` or not a hub folder. The hub clients' own
            errors (authentication, network) propagate unchanged.
    """
    with plan_push(folder, repo_id, hub=hub, private=private, commit_message=commit_message) as plan:
        if dry_run:
            logger.info("Dry run, nothing sent:\n%s", plan.describe())
            return plan.target
        return execute_plan(plan, token=token)


def execute_plan(plan: PublishPlan, *, token: Optional[str] = None) -> str:
    """Carry out a :func:`plan_push` plan; returns the repo URL or the registry folder."""
    if plan.hub == "dir":
        return _publish_to_registry(plan)
    if plan.hub == "hf":
        return _publish_to_hf(plan, token)
    return _publish_to_modelscope(plan, token)
