"""Loading weights from where they are published, and publishing new ones."""
from .errors import WeightsNotFoundError
from .loading import load_detector, load_folder

__all__ = ["WeightsNotFoundError", "load_detector", "load_folder"]
