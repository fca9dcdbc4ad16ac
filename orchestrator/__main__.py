"""`python -m orchestrator`: the same as the `orchestrate` command."""

from orchestrator.cli import main

main()
