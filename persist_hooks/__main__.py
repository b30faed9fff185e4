"""``python -m persist_hooks``: the ``persist-hooks`` command (see :mod:`persist_hooks.cli`).

Example:
    $ python -m persist_hooks info results/mydata
"""

import sys

from persist_hooks.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m persist_hooks"))
