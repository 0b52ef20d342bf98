"""``python -m mtlspop_lab.cli VERB ...``: the same as the ``mtlspop-lab`` command."""

import sys

from . import main

sys.exit(main())
