"""`python -m softrl.sweep ...` is `softrl sweep ...`."""

import sys

from softrl.cli import main

raise SystemExit(main(["sweep", *sys.argv[1:]]))
