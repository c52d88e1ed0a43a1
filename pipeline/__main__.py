"""`python -m pipeline` is the `trialstruct` command."""

from pipeline.cli import main

main()
