"""From a searched backbone structure to a full detector config: neck and head come from a base zoo size."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping

from damo_pipeline.models import ModelConfig, get_model_config, list_models

from .ops import FAMILIES, FAMILY_ACT, FAMILY_BACKBONE, FAMILY_OUT_INDICES, backbone_out_channels
from .space import Structure, to_damo_list
from ..config_dict import check_config_dict

BASES = ("t", "s", "m", "l")
DEFAULT_BASE = {"res": "t", "csp": "m"}


@dataclass
class DetectorTemplate:
    """How a searched structure becomes a detector.

    Attributes:
        family: backbone wrapper, ``"res"`` (TinyNAS_res, as T and S) or ``"csp"`` (TinyNAS_csp, as M and L).
        base: zoo size whose neck, head, post-processing and classes are reused (``t``, ``s``, ``m``, ``l``);
            the neck's ``in_channels`` become the searched backbone's output widths.
        img_size: input side of the detector (multiple of 32).
    """

    family: str = "res"
    base: str = "t"
    img_size: int = 640

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}.")
        self.base = self.base.strip().lower().replace("damoyolo-", "")
        if self.base not in BASES:
            raise ValueError(f"base must be one of {BASES} (zoo sizes {list_models('damoyolo-[tsml]')}), "
                             f"got {self.base!r}.")
        if not isinstance(self.img_size, int) or self.img_size <= 0 or self.img_size % 32:
            raise ValueError(f"img_size must be a positive multiple of 32, got {self.img_size!r}.")

    @property
    def base_model(self) -> str:
        return f"damoyolo-{self.base}"

    def base_config(self) -> ModelConfig:
        """The base zoo config at this template's input size."""
        return get_model_config(self.base_model).replace(img_size=self.img_size)

    def backbone_config(self, structure: Structure) -> Dict[str, Any]:
        """``backbone`` dict for ``structure``: the base's when it is the same family, else family defaults."""
        base_backbone = self.base_config().backbone
        if base_backbone["type"] == FAMILY_BACKBONE[self.family]:
            backbone = dict(base_backbone)
        else:
            backbone = {"type": FAMILY_BACKBONE[self.family], "out_indices": list(FAMILY_OUT_INDICES[self.family]),
                        "with_spp": True, "use_focus": True, "act": FAMILY_ACT[self.family], "reparam": True}
        backbone["structure"] = to_damo_list(structure)
        return backbone

    def model_config(self, structure: Structure, name: str = "damoyolo-nas") -> ModelConfig:
        """A config :func:`damo_pipeline.models.build_model` accepts: searched backbone + base neck and head."""
        widths = backbone_out_channels(structure, self.family)
        base = self.base_config()
        return base.replace(name=name, backbone=self.backbone_config(structure), neck={"in_channels": widths})

    @property
    def backbone_act(self) -> str:
        """Activation of the backbone's stem and residual units."""
        base_backbone = self.base_config().backbone
        if base_backbone["type"] == FAMILY_BACKBONE[self.family]:
            return str(base_backbone.get("act", FAMILY_ACT[self.family]))
        return FAMILY_ACT[self.family]

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DetectorTemplate":
        return cls(**check_config_dict(cls, dict(data), "detector-template"))



def shipped_structure(base: str) -> Structure:
    """The TinyNAS structure the zoo ships for base size ``base`` (e.g. ``tinynas_L20_k1kx`` for ``t``)."""
    from damo_pipeline.models import load_structure

    from .space import parse_structure

    spec = get_model_config(f"damoyolo-{base.strip().lower().replace('damoyolo-', '')}").backbone["structure"]
    return parse_structure(load_structure(spec))
