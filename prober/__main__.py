"""`python -m prober` (what `vigil prober` and `vigil run` start)."""

import sys

from prober.service import main
from vigil.process import run_process

sys.exit(run_process(main))
