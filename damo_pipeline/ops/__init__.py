"""Tensor operations shared by the pipelines and tools (plain torch)."""

from damo_pipeline.ops.nms import batched_nms, multiclass_nms, nms

__all__ = ["nms", "batched_nms", "multiclass_nms"]
