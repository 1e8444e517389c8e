"""Detector: composes a backbone, a neck and a head built from a :class:`ModelConfig`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from .backbones import BACKBONES
from .config import ModelConfig
from .heads import HEADS
from .layers import RepConv
from .necks import NECKS

BN_EPS = 1e-3
BN_MOMENTUM = 0.03


class Detector(nn.Module, PyTorchModelHubMixin, library_name="damo_pipeline", pipeline_tag="object-detection",
               license="apache-2.0", repo_url="https://github.com/tinyvision/DAMO-YOLO",
               paper_url="https://arxiv.org/abs/2211.15444", tags=["damo-yolo", "object-detection"]):
    """A DAMO-YOLO detector. State-dict keys are ``backbone.*``, ``neck.*``, ``head.*`` as upstream.

    ``forward(images)`` in eval mode returns ``(scores [N, A, K], boxes [N, A, 4])`` (sigmoid scores,
    xyxy boxes in input pixels, no NMS). In train mode ``forward(images, targets)`` returns the loss
    dict ``total_loss, loss_cls, loss_bbox, loss_dfl``. Images are float RGB 0..255, NCHW, with H and W
    multiples of 32.

    Hub support comes from huggingface_hub's ``PyTorchModelHubMixin`` (the constructor takes only the
    JSON config): ``save_pretrained(folder)`` writes the project's hub format and ``push_to_hub(repo_id)``
    uploads it; ``Detector.from_pretrained(spec)`` accepts everything :func:`damo_pipeline.hub.load_detector`
    does and loads strictly. Both go through :mod:`damo_pipeline.hub`.
    """

    def __init__(self, config: Union[ModelConfig, Dict[str, Any]]) -> None:
        super().__init__()
        cfg = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        self.config = ModelConfig.from_dict(cfg.to_dict())
        self.backbone = BACKBONES.build(dict(cfg.backbone))
        self.neck = NECKS.build(dict(cfg.neck))
        self.head = HEADS.build({**cfg.head, "num_classes": cfg.num_classes})
        self._check_widths()
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = BN_EPS, BN_MOMENTUM

    def _check_widths(self) -> None:
        backbone_out = list(self.backbone.out_channels)
        neck_in = list(self.config.neck.get("in_channels", []))
        if backbone_out != neck_in:
            raise ValueError(f"Backbone outputs {backbone_out} channels but neck.in_channels is {neck_in}.")
        head_in = list(self.config.head.get("in_channels", []))
        if list(self.neck.out_channels) != head_in:
            raise ValueError(f"Neck outputs {self.neck.out_channels} channels but head.in_channels is {head_in}.")

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def class_names(self) -> List[str]:
        return list(self.config.class_names)

    @property
    def img_size(self) -> int:
        return self.config.img_size

    @property
    def is_fused(self) -> bool:
        """True once :meth:`fuse` has run (no BatchNorm left)."""
        return not any(isinstance(m, nn.BatchNorm2d) for m in self.modules())

    def extract_features(self, images: torch.Tensor) -> List[torch.Tensor]:
        """Neck outputs at strides 8, 16, 32 (what distillation compares)."""
        _check_images(images)
        return list(self.neck(self.backbone(images)))

    def forward(self, images: torch.Tensor, targets: Optional[Sequence[Dict[str, torch.Tensor]]] = None
                ) -> Union[Tuple[torch.Tensor, torch.Tensor], Dict[str, torch.Tensor]]:
        features = self.extract_features(images)
        if targets is not None:
            if not self.training:
                raise ValueError("Targets were given to a model in eval mode; call model.train() to get losses.")
            return self.head.loss(features, targets)
        return self.head(features)

    # --- hub integration (PyTorchModelHubMixin hooks; the work is done in damo_pipeline.hub) ---

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write ``config.json``, ``model.safetensors``, ``README.md`` and ``configuration.json``."""
        from ..hub.hub_format import save_pretrained

        save_pretrained(self, save_directory)

    def generate_model_card(self, *args: Any, **kwargs: Any):
        """The project's model card (see :func:`damo_pipeline.hub.build_model_card`) for this model."""
        from ..hub.card import CardContext, build_model_card

        return build_model_card(CardContext(model_config=self.config.to_dict()))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, Path], *, force_download: bool = False,
                        token: Optional[str] = None, cache_dir: Optional[Union[str, Path]] = None,
                        local_files_only: bool = False, revision: Optional[str] = None, **model_kwargs: Any
                        ) -> "Detector":
        """Load a detector with weights from a hub id, zoo id, URL or local path (strict loading, eval mode).

        See :func:`damo_pipeline.hub.load_detector` for the accepted forms; ``force_download`` is not
        supported (delete the cached copy instead).
        """
        return cls._from_pretrained(model_id=str(pretrained_model_name_or_path), revision=revision,
                                    cache_dir=cache_dir, force_download=force_download,
                                    local_files_only=local_files_only, token=token, **model_kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: Optional[str], cache_dir: Optional[Union[str, Path]],
                         force_download: bool, local_files_only: bool, token: Optional[str],
                         **model_kwargs: Any) -> "Detector":
        from ..hub import load_detector

        if force_download:
            raise ValueError("force_download is not supported; delete the cached file or folder and load again.")
        unknown = sorted(k for k in model_kwargs if k != "config")
        if unknown:
            raise TypeError(f"Detector.from_pretrained got unexpected arguments {unknown}.")
        return load_detector(model_id, revision=revision, cache_dir=cache_dir,
                             local_files_only=True if local_files_only else None, token=token)

    @torch.no_grad()
    def fuse(self, fold_bn: bool = True) -> "Detector":
        """Deploy form, in place: RepConv branches (and, with ``fold_bn``, every BatchNorm) folded into
        single convolutions.

        Outputs stay within float32 re-association error of the training form. The state_dict no longer
        matches official training checkpoints, so load weights before fusing. ``fold_bn=False`` gives the
        official re-parameterised form (``switch_to_deploy``), whose parameter count the README reports.
        Returns ``self``.
        """
        for module in list(self.modules()):
            fuse = getattr(module, "fuse", None)
            if module is self or not callable(fuse):
                continue
            if fold_bn or isinstance(module, RepConv):
                fuse()
        return self


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor [N, 3, H, W], got {type(images).__name__}.")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape [N, 3, H, W], got {list(images.shape)}.")
    h, w = images.shape[-2:]
    if h % 32 or w % 32:
        raise ValueError(f"Image height and width must be multiples of 32 (the neck halves them 5 times), "
                         f"got {h}x{w}; resize or pad the input.")
