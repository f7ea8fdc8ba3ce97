"""``python -m proformer.cli``: the ``proformer`` command."""

import sys

from . import main

sys.exit(main())
