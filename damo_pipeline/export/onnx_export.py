"""export_onnx: the fused deploy model as an ONNX graph that describes itself in its metadata."""
from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import nn

from ..models import Detector
from ..ops.resize import as_size
from ..runtime.graph_metadata import INPUT_NAME, METADATA_KEY, NMS_OUTPUTS, RAW_OUTPUTS, metadata_from_map
from ..version import __version__
from .onnx_nms import NMSPostprocess

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17


class _ExportWrapper(nn.Module):
    """Fused detector [+ NMS postprocess] with plain tensor outputs (what the graph computes)."""

    def __init__(self, model: Detector, nms: Optional[NMSPostprocess]) -> None:
        super().__init__()
        self.model = model
        self.nms = nms

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        features = self.model.neck(self.model.backbone(images))
        scores, boxes = self.model.head(features)
        if self.nms is None:
            return scores, boxes
        return self.nms(scores, boxes)


def _layout(nms: bool, max_detections: int) -> Dict[str, str]:
    if not nms:
        return {
            "scores": "float [N, A, C]: per-anchor sigmoid class scores (A = anchors at strides 8, 16, 32, row-major)",
            "boxes": "float [N, A, 4]: x1, y1, x2, y2 in input-image pixels (before any back-scaling)",
        }
    return {
        "num_dets": "int64 [N, 1]: number of valid rows per image",
        "det_boxes": f"float [N, {max_detections}, 4]: x1, y1, x2, y2 in input pixels, sorted by score; zero past num_dets",
        "det_scores": f"float [N, {max_detections}]: scores, descending; zero past num_dets",
        "det_classes": f"int64 [N, {max_detections}]: 0-based class ids; -1 past num_dets",
    }


def build_metadata(model: Detector, img_size: Union[int, Tuple[int, int]], nms: bool, half: bool, score_threshold: float,
                   iou_threshold: float, max_detections: int) -> Dict[str, Any]:
    """Everything a consumer of the graph needs: layout, classes, input size, pre-processing, default settings."""
    height, width = as_size(img_size)
    config = model.config
    return {
        "library": "damo_pipeline",
        "library_version": __version__,
        "architecture": model.config.name,
        "class_names": list(model.class_names),
        "img_size": height if height == width else [height, width],
        "input": f"{INPUT_NAME}: float{'16' if half else '32'} [N, 3, {height}, {width}], RGB, 0..255, no normalisation",
        "resize": model.config.resize,
        "preprocess": "RGB; resize to img_size x img_size (stretch: cv2 INTER_LINEAR on uint8, aspect not kept); "
                      "HWC->CHW float; map boxes back with x * w_orig / img_size, y * h_orig / img_size",
        "nms": nms,
        "score_threshold": score_threshold if nms else None,
        "iou_threshold": iou_threshold if nms else None,
        "max_detections": max_detections if nms else None,
        "outputs": _layout(nms, max_detections),
        "model_defaults": {"score_threshold": config.score_threshold, "iou_threshold": config.iou_threshold,
                           "max_detections": config.max_detections, "legacy": bool(config.head.get("legacy", False))},
    }


def read_metadata(path: Union[str, Path]) -> Dict[str, Any]:
    """The ``damo_pipeline`` metadata of an exported graph (no model weights are loaded)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return metadata_from_map({prop.key: prop.value for prop in model.metadata_props}, str(path))


def export_onnx(model_or_id: Union[Detector, str, Path], path: Union[str, Path],
                img_size: Optional[Union[int, Tuple[int, int]]] = None,
                batch: Union[str, int] = "dynamic", nms: bool = False, half: bool = False,
                opset: int = DEFAULT_OPSET, checkpoint: Optional[Union[str, Path]] = None,
                score_threshold: Optional[float] = None, iou_threshold: Optional[float] = None,
                max_detections: int = 100) -> Path:
    """Export the fused deploy model to ONNX, checked with ``onnx.checker``, written atomically.

    Args:
        model_or_id: a Detector with its weights, or anything :func:`damo_pipeline.hub.load_detector`
            accepts (zoo id with ``checkpoint``, checkpoint file, hub folder or id).
        path: output ``.onnx`` file.
        img_size: input side, or ``(height, width)`` (default the model's native size); multiples of 32.
        batch: ``"dynamic"`` (batch axis symbolic) or a fixed batch size.
        nms: end the graph in ONNX NonMaxSuppression with the fixed layout documented in the metadata.
        half: float16 weights and input (for GPU runtimes such as TensorRT; CPU runtimes prefer float32).
        opset: ONNX opset (NonMaxSuppression needs >= 11).
        score_threshold / iou_threshold: NMS thresholds (default the model's: 0.05/0.7, Nano 0.03/0.65).
        max_detections: rows per image of the NMS layout (official post-processing keeps up to 500;
            100 is what COCO evaluation reads and what deployments usually want).

    Returns:
        The path written.
    """
    import onnx

    if isinstance(model_or_id, Detector):
        model = copy.deepcopy(model_or_id)
    else:
        from ..hub import load_detector

        model = load_detector(model_or_id, checkpoint)
    height, width = as_size(img_size or model.img_size)
    if not (batch == "dynamic" or (isinstance(batch, int) and batch > 0)):
        raise ValueError(f"batch must be 'dynamic' or a positive int, got {batch!r}.")
    if nms and opset < 11:
        raise ValueError(f"NonMaxSuppression needs opset >= 11, got opset={opset}.")
    score_threshold = model.config.score_threshold if score_threshold is None else score_threshold
    iou_threshold = model.config.iou_threshold if iou_threshold is None else iou_threshold
    model = model.cpu().eval().fuse()
    dtype = torch.float16 if half else torch.float32
    wrapper = _ExportWrapper(model.to(dtype), NMSPostprocess(score_threshold, iou_threshold, max_detections)
                             if nms else None).eval()
    example = torch.zeros(2 if batch == "dynamic" else batch, 3, height, width, dtype=dtype)
    outputs = list(NMS_OUTPUTS if nms else RAW_OUTPUTS)
    dynamic_axes = {name: {0: "batch"} for name in [INPUT_NAME] + outputs} if batch == "dynamic" else None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.part", dir=path.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(wrapper, (example,), tmp, input_names=[INPUT_NAME], output_names=outputs,
                              dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True,
                              dynamo=False)
        graph = onnx.load(tmp)
        meta = build_metadata(model, (height, width), nms, half, score_threshold, iou_threshold, max_detections)
        entry = graph.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        graph.producer_name = "damo_pipeline"
        graph.producer_version = __version__
        onnx.checker.check_model(graph)
        onnx.save(graph, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    logger.info("Exported %s (%s, %dx%d, nms=%s) to %s", model.config.name, dtype, height, width, nms, path)
    return path
