"""Where each zoo architecture's official weights live, with the official numbers (data, no code).

Numbers are the official README's (COCO val2017 mAP 0.5:0.95; latency without NMS: T/S/M/L on a T4
with TensorRT FP16, Nano on an Intel 8163 CPU with OpenVINO FP16; params/FLOPs after RepConv fusion).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

_RELEASE = "https://idstcv.oss-cn-zhangjiakou.aliyuncs.com/DAMO-YOLO/release_model"


@dataclass(frozen=True)
class PretrainedCfg:
    """One published checkpoint of a zoo architecture.

    Attributes:
        tag: ``distill`` (the starred, distilled models) or ``plain``.
        url: official release ``.pth`` (a dict with a ``model`` state_dict in training form).
        sha256: hex digest when known (verified after download); ``None`` when not recorded yet.
        modelscope_id: ModelScope repo of this architecture (its weights may be another release).
        coco_map: official COCO val2017 mAP@[.5:.95].
        teacher: zoo name of the distillation teacher for ``distill`` weights.
    """

    tag: str
    url: str
    coco_map: float
    sha256: Optional[str] = None
    modelscope_id: Optional[str] = None
    teacher: Optional[str] = None


@dataclass(frozen=True)
class ZooCard:
    """Official figures shared by all weights of one architecture."""

    latency_ms: float
    latency_device: str
    gflops: float
    params_m: float
    weights: Dict[str, PretrainedCfg] = field(default_factory=dict)

    @property
    def default(self) -> PretrainedCfg:
        """The best published weights (the first entry)."""
        return next(iter(self.weights.values()))


_T4 = "T4 GPU, TensorRT FP16, batch 1"
_CPU = "Intel 8163 CPU, OpenVINO FP16, batch 1"

ZOO_CARDS: Dict[str, ZooCard] = {
    "damoyolo-ns": ZooCard(4.08, _CPU, 1.56, 1.41, {
        "plain": PretrainedCfg("plain", f"{_RELEASE}/ckpt/before_distill/damoyolo_nano_small.pth", 32.3)}),
    "damoyolo-nm": ZooCard(5.05, _CPU, 3.69, 2.71, {
        "plain": PretrainedCfg("plain", f"{_RELEASE}/ckpt/before_distill/damoyolo_nano_middle.pth", 38.2)}),
    "damoyolo-nl": ZooCard(6.69, _CPU, 6.04, 5.69, {
        "plain": PretrainedCfg("plain", f"{_RELEASE}/ckpt/before_distill/damoyolo_nano_large.pth", 40.5)}),
    "damoyolo-t": ZooCard(2.78, _T4, 18.1, 8.5, {
        "distill": PretrainedCfg("distill", f"{_RELEASE}/clean_model_0317/damoyolo_tinynasL20_T_436.pth", 43.6,
                                 modelscope_id="damo/cv_tinynas_object-detection_damoyolo-t", teacher="damoyolo-s"),
        "plain": PretrainedCfg("plain", f"{_RELEASE}/clean_model_0317/damoyolo_tinynasL20_T_420.pth", 42.0)}),
    "damoyolo-s": ZooCard(3.83, _T4, 37.8, 16.3, {
        "distill": PretrainedCfg("distill", f"{_RELEASE}/clean_model_0317/damoyolo_tinynasL25_S_477.pth", 47.7,
                                 modelscope_id="damo/cv_tinynas_object-detection_damoyolo", teacher="damoyolo-m"),
        "plain": PretrainedCfg("plain", f"{_RELEASE}/clean_model_0317/damoyolo_tinynasL25_S_460.pth", 46.0)}),
    "damoyolo-m": ZooCard(5.62, _T4, 61.8, 28.2, {
        "distill": PretrainedCfg("distill", f"{_RELEASE}/clean_model_0317/damoyolo_tinynasL35_M_502.pth", 50.2,
                                 modelscope_id="damo/cv_tinynas_object-detection_damoyolo-m", teacher="damoyolo-l"),
        "plain": PretrainedCfg("plain", f"{_RELEASE}/clean_model_0317/damoyolo_tinynasL35_M_492.pth", 49.2)}),
    "damoyolo-l": ZooCard(7.95, _T4, 97.3, 42.1, {
        "distill": PretrainedCfg("distill", f"{_RELEASE}/clean_model_0317/damoyolo_tinynasL45_L_519.pth", 51.9,
                                 teacher="damoyolo-l"),
        "plain": PretrainedCfg("plain", f"{_RELEASE}/clean_model_0317/damoyolo_tinynasL45_L_508.pth", 50.8)}),
}
