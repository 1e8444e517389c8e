"""The names and self-description of an exported DAMO-YOLO graph, readable without torch or onnx.

:func:`damo_pipeline.export.export_onnx` writes these; the runtimes read them back from the graph file.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Mapping

METADATA_KEY = "damo_pipeline"
INPUT_NAME = "images"
RAW_OUTPUTS = ("scores", "boxes")
NMS_OUTPUTS = ("num_dets", "det_boxes", "det_scores", "det_classes")

__all__ = ["INPUT_NAME", "METADATA_KEY", "NMS_OUTPUTS", "RAW_OUTPUTS", "metadata_from_map"]


def metadata_from_map(custom_metadata: Mapping[str, str], source: str) -> Dict[str, Any]:
    """Parse the ``damo_pipeline`` entry of a graph's ``metadata_props``.

    Args:
        custom_metadata: key -> value strings of the graph (ONNX ``metadata_props``).
        source: the graph's name, for the error message.

    Raises:
        ValueError: the graph was not exported by damo_pipeline (no entry), or the entry is not JSON.
    """
    if METADATA_KEY not in custom_metadata:
        raise ValueError(f"{source!r} has no {METADATA_KEY!r} metadata: it was not exported by damo_pipeline. "
                         f"Export it with damo_pipeline.export.export_onnx (or `damo-export`).")
    try:
        return json.loads(custom_metadata[METADATA_KEY])
    except json.JSONDecodeError as e:
        raise ValueError(f"{source!r} has unreadable {METADATA_KEY!r} metadata ({e}); re-export it.") from e
