"""`python -m pipeline` is the `trialstruct` command."""

from pipeline.cli import app

app(prog_name="trialstruct")
