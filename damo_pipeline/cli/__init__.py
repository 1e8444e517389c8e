"""Command-line entry points (``damo-detect``)."""
