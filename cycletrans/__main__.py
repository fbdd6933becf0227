"""``python -m cycletrans``: the command line (see ``cycletrans.cli``)."""

import sys

from cycletrans.cli import main

if __name__ == "__main__":
    sys.exit(main())
