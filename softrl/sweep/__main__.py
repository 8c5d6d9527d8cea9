"""`python -m softrl.sweep ...`: the sweep command before softrl.cli wires it in as `softrl sweep`."""

from softrl.sweep.command import main

raise SystemExit(main())
