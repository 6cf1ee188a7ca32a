"""`python -m gateway.cli`: the same entry point as the console script."""

import sys

from gateway.cli.app import main

sys.exit(main())
