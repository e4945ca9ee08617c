"""``python -m conforto`` runs the command line."""

from conforto.cli import app

app(prog_name="conforto")
