"""``python -m conforto`` runs the command line."""

from conforto._cli import run

run()
