"""`python -m memscan.cli`."""

from memscan.cli import main

main()
