"""`python -m echo_lib.bench`: the benchmark; see `echo_lib.bench`."""

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
