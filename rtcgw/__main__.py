"""``python -m rtcgw``: the same as the ``rtcgw`` command."""

import sys

from rtcgw.cli import main

sys.exit(main())
