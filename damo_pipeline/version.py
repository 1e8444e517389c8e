"""Version of the damo_pipeline package (read as text by setup.py)."""

__version__ = "0.1.0"
