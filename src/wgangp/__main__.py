"""``python -m wgangp`` is the ``wgangp`` command."""

import sys

from wgangp.cli import main

sys.exit(main())
