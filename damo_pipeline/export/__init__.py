"""Deployment: ONNX export of the fused model, with an optional in-graph NMS."""
from .onnx_export import DEFAULT_OPSET, export_onnx, read_metadata

__all__ = ["DEFAULT_OPSET", "export_onnx", "read_metadata"]
