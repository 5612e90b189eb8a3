"""Serving knobs read by `silkroute serve` and by its worker processes (no heavy imports:
the CLI imports this to show the defaults)."""

from __future__ import annotations

THREADS_ENV = "SILKROUTE_THREADS"
# Endpoint threads per `serve` worker process. The endpoints are synchronous and mostly
# wait on the database; more threads than this only fight over the GIL (measured with
# `bench http` on 2 cores: 40 threads 104 orders/s, 16: 128, 8: 152, 4: 154; docs/api.md).
DEFAULT_THREADS = 8

GROUP_ENV = "SILKROUTE_BUY_NOW_GROUP"
# Buy-nows a worker runs together at most (group commit, api/group_commit.py; PostgreSQL
# only); 0 runs each alone. docs/api.md has the measurements.
DEFAULT_GROUP = 64
