"""``python -m galdb`` runs the CLI."""

from galdb.cli import run

run()
