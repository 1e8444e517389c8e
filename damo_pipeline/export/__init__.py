"""Deployment: ONNX export of the fused model (optionally ending in NMS), and the cache the engines use."""
from .cache import cached_int8_export, cached_onnx_export, onnx_cache_key, weights_digest
from .onnx_export import DEFAULT_OPSET, export_onnx, read_metadata
from .quantize import find_calibration_images, quantize_onnx

__all__ = ["DEFAULT_OPSET", "cached_int8_export", "cached_onnx_export", "export_onnx", "find_calibration_images", "onnx_cache_key",
           "quantize_onnx", "read_metadata", "weights_digest"]
