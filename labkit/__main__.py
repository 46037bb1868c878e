"""``python -m labkit``: the command line, as the ``labkit`` script runs it."""

from labkit.cli import main

main()
