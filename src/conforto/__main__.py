"""``python -m conforto`` runs the command line."""

from conforto.cli import run

run()
