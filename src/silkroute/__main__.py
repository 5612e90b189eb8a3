"""`python -m silkroute ...`: the same as the `silkroute` command."""

from silkroute.cli import main

main()
