"""`python -m memscan.cli`."""

from memscan.cli import main

main(prog_name="memscan")
