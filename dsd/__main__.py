"""`python -m dsd` is the `dsd` command."""

from dsd.cli import main

main()
