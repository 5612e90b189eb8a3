"""Use cases: each takes a unit of work and plain arguments and returns plain results."""
