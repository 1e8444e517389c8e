"""Label assigners for dense detection heads."""

from .aligned_ota import AlignedOTAAssigner, AssignResult

__all__ = ["AlignedOTAAssigner", "AssignResult"]
