"""`softrl sweep`: grids and random searches of hyperparameters x environments x seeds, run as Ray tasks.

Install: `pip install "softrl[ray]"` (Ray core; the sweep needs no dashboard).

Local (default): the sweep starts Ray in this process with `ray.init(address="local",
include_dashboard=False, _node_ip_address="127.0.0.1")`, so every Ray service binds to the loopback
interface, and it sets RAY_USAGE_STATS_ENABLED=0 before importing Ray, so nothing is reported.

A cluster: `--address auto` joins the cluster that this machine is a node of (started with
`ray start --head` / `ray start --address HEAD:6379`); `--address HOST:PORT` joins the head's GCS at
HOST:PORT. The sweep first opens a TCP connection to HOST:PORT and stops with a one-line error if that
fails. softrl must be installed, in the same version, on every node (workers import it).
- Token-protected clusters (Ray >= 2.52 with RAY_AUTH_MODE=token; Ray's docs announce token auth as the
  default for local clusters from 2.59 and for all clusters from 2.61): the driver must present the
  cluster's token. Set RAY_AUTH_MODE=token and either RAY_AUTH_TOKEN=<token> or
  RAY_AUTH_TOKEN_PATH=<file> in the environment of `softrl sweep`, or copy the token to Ray's default path
  (`ray get-auth-token` on the head prints it; `~/.ray/auth_token`). Without it the connection is refused.
- A cluster started with RAY_AUTH_MODE=disabled accepts any client that can reach its ports; start
  `softrl sweep` with RAY_AUTH_MODE=disabled too, and keep such a cluster on a private network.
The local session that the sweep starts itself gets a token that Ray generates and uses internally.

Modules: `spec` (parsing, validation, packable vs separate-trial fields, expansion to trials), `runner`
(Ray tasks, checkpoint resume), `command` (the CLI dataclass and handler).
"""

from softrl.sweep.command import SweepCommand, run_sweep
from softrl.sweep.spec import PACKABLE, Dist, SweepSpec, Trial, make_spec, parse_grid_item, points, trials

__all__ = ["PACKABLE", "Dist", "SweepCommand", "SweepSpec", "Trial", "make_spec", "parse_grid_item", "points",
           "run_sweep", "trials"]
