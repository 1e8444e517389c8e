"""``python -m hub_upload ...`` (see :mod:`hub_upload.cli`)."""
import sys

from .cli import main

sys.exit(main())
