"""`python -m echo_lib`: the command line; see `echo_lib.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
