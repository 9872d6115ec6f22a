"""`python -m sim` is the `sim` command."""

from sim.cli import cli

cli()
