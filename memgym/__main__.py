"""`python -m memgym ...` is the `memgym` command; launchers need it: `torchrun -m memgym train`."""

import sys

from memgym.cli import main

if __name__ == "__main__":
    sys.exit(main())
