"""``python -m spapr_irq``: the spapr-irq command."""

import sys

from .cli import main

sys.exit(main())
