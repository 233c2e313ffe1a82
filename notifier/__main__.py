"""`python -m notifier` (what `vigil notifier` and `vigil run` start)."""

import sys

from notifier.service import main
from vigil.process import run_process

sys.exit(run_process(main))
