"""``python -m dispatcher`` runs the ``drt`` command."""

from dispatcher.cli import app

app()
