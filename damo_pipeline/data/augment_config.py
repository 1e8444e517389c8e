"""The official DAMO-YOLO training augmentation settings (``spec/training.md`` §3.1) as a dataclass."""
from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union
from ..config_dict import check_config_dict

logger = logging.getLogger(__name__)

# Per-size differences from the defaults below (training.md §3.1).
_SIZE_OVERRIDES: Dict[str, Dict[str, Any]] = {
    "t": {"shear": 0.2},
    "s": {},
    "m": {},
    "l": {},
    "ns": {"shear": 0.2, "mosaic_scale": (0.75, 1.25), "img_size": 416},
    "nm": {"shear": 0.2, "img_size": 416},
    "nl": {"shear": 0.2, "img_size": 416},
}
_PAIR_FIELDS = ("mosaic_scale", "mixup_scale")


@dataclass
class TrainAugmentConfig:
    """Training augmentation: mosaic -> random affine -> mixup -> stretch resize -> flip (official order).

    Attributes:
        img_size: network input side S (640; 416 for Nano). Every training image leaves the pipeline S x S.
        mosaic_prob: probability of building a mosaic (1.0 officially); otherwise the plain no-aug path.
        mosaic_size: mosaic tile size M; the canvas is 2M x 2M and the affine warp outputs M x M (640 for all
            sizes, Nano included, which is then resized to 416).
        mosaic_scale: range of the affine's isotropic scale.
        degrees: rotation range (+-, degrees).
        translate: translation range (+-, fraction of M) around the centre.
        shear: shear range (+-, degrees) on each axis.
        mixup_prob: probability of mixing in a second (letterboxed, jittered, cropped) image at 50/50.
        mixup_scale: jitter range of the mixed image's scale.
        flip_prob: probability of a horizontal flip.
        min_box_area: boxes with area <= this (network px^2, before the final resize) are dropped after mixup.
        candidate_wh: after the affine, boxes narrower or shorter than this (px) are dropped.
        candidate_area_ratio: after the affine, boxes that keep <= this fraction of their scaled area are dropped.
        candidate_aspect: after the affine, boxes with aspect ratio >= this are dropped.
        drop_cut_boxes: drop boxes that the mosaic's canvas clip leaves with no area before the affine. The
            official code keeps them; they then pass its candidate filter (their original area is 0) and, once
            rotated or sheared, become thin false boxes along the canvas edge. False reproduces the official code.
        use_polygons: compute post-affine boxes from segmentation polygons when the annotations have them.
        fill_value: grey level of the mosaic canvas and the affine border (114).
        sada: scale-aware box-level augmentation (§3.5, see ``damo_pipeline.data.sada``); off by default.
        sada_epochs: with ``sada``, the epochs its probabilities ramp over (the mosaic epochs: total - no-aug);
            the op probabilities are p x epoch / sada_epochs, and SADA is off from epoch ``sada_epochs`` on.
        sada_box_prob: SADA's base probability of selecting a box.
    """

    img_size: int = 640
    mosaic_prob: float = 1.0
    mosaic_size: int = 640
    mosaic_scale: Tuple[float, float] = (0.1, 2.0)
    degrees: float = 10.0
    translate: float = 0.2
    shear: float = 2.0
    mixup_prob: float = 0.15
    mixup_scale: Tuple[float, float] = (0.5, 1.5)
    flip_prob: float = 0.5
    min_box_area: float = 4.0
    candidate_wh: float = 2.0
    candidate_area_ratio: float = 0.1
    candidate_aspect: float = 20.0
    drop_cut_boxes: bool = True
    use_polygons: bool = True
    fill_value: int = 114
    sada: bool = False
    sada_epochs: Optional[int] = None
    sada_box_prob: float = 0.3

    def __post_init__(self) -> None:
        for name in _PAIR_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 2 or float(value[0]) > float(value[1]):
                raise ValueError(f"{name} must be a (low, high) pair with low <= high, got {value!r}.")
            setattr(self, name, (float(value[0]), float(value[1])))
        if not isinstance(self.img_size, int) or self.img_size <= 0 or self.img_size % 32:
            raise ValueError(f"img_size must be a positive multiple of 32, got {self.img_size!r}.")
        if not isinstance(self.mosaic_size, int) or self.mosaic_size <= 0:
            raise ValueError(f"mosaic_size must be a positive int, got {self.mosaic_size!r}.")
        for name in ("mosaic_prob", "mixup_prob", "flip_prob"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)!r}.")
        for name in ("degrees", "translate", "shear", "min_box_area"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}.")
        if not 0 <= int(self.fill_value) <= 255:
            raise ValueError(f"fill_value must lie in 0..255, got {self.fill_value!r}.")
        if self.sada and (not isinstance(self.sada_epochs, int) or self.sada_epochs < 1):
            raise ValueError(f"sada=True needs sada_epochs, a positive int (the number of mosaic epochs: total "
                             f"epochs - no-aug epochs), got {self.sada_epochs!r}.")

    @classmethod
    def for_model(cls, model: Union[str, Dict[str, Any], Any], **overrides: Any) -> "TrainAugmentConfig":
        """The official settings for a model size.

        Args:
            model: a zoo id (``damoyolo-t``), a size (``t``, ``ns``), a ``ModelConfig`` or its dict. Custom names
                get the T/S/M/L defaults with the config's ``img_size``.
            **overrides: any field, e.g. ``mixup_prob=0.0``.
        """
        if isinstance(model, str):
            name, img_size = model, None
        elif isinstance(model, dict):
            name, img_size = str(model.get("name", "")), model.get("img_size")
        elif hasattr(model, "name") and hasattr(model, "img_size"):
            name, img_size = str(model.name), model.img_size
        else:
            raise TypeError(f"for_model expects a model name, a ModelConfig or its dict, got {type(model).__name__}.")
        key = name.lower().removeprefix("damoyolo-").removeprefix("damoyolo_")
        values: Dict[str, Any] = {}
        if key in _SIZE_OVERRIDES:
            values.update(_SIZE_OVERRIDES[key])
        elif isinstance(model, str):
            raise ValueError(f"Unknown model size {model!r}; choose one of "
                             f"{['damoyolo-' + k for k in _SIZE_OVERRIDES]} or pass a ModelConfig.")
        else:
            logger.info("Model %r is not a zoo size; using the T/S/M/L augmentation defaults.", name)
        if img_size is not None:
            values["img_size"] = int(img_size)
        values.update(overrides)
        return cls(**values)

    def replace(self, **overrides: Any) -> "TrainAugmentConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable dict (pairs as lists)."""
        data = copy.deepcopy(dataclasses.asdict(self))
        for name in _PAIR_FIELDS:
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TrainAugmentConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        check_config_dict(cls, data, "augmentation")
        return cls(**{k: tuple(v) if k in _PAIR_FIELDS else v for k, v in data.items()})
