"""`python -m services.cli`: the `jiedu` command, for tests and hosts without the entry point."""

from services.cli import main

main()
