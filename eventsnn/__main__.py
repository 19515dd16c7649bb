"""``python -m eventsnn``: the ``eventsnn`` command."""
import sys

from .cli import main

sys.exit(main())
