"""``python -m rtcgw.worker``: a worker process, started by the supervisor."""

import sys

from rtcgw.worker.main import main

sys.exit(main())
