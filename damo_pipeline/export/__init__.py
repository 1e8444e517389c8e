"""Deployment: ONNX export of the fused model (optionally ending in NMS), and the cache the engines use."""
from .cache import cached_onnx_export, onnx_cache_key, weights_digest
from .onnx_export import DEFAULT_OPSET, export_onnx, read_metadata

__all__ = ["DEFAULT_OPSET", "cached_onnx_export", "export_onnx", "onnx_cache_key", "read_metadata", "weights_digest"]
