"""Helper: writes items ``small`` and ``large`` alternately, for ever, until SIGKILLed.

Ids grow by one per write from ``first_id``; ``<item> <id>`` goes to the log
after the assignment returned (no lock needed: the only writer).
"""

import json
import os
import sys

from relhelpers import value

from persist_hooks.dataset import DataSet


def main() -> None:
    cfg = json.loads(sys.argv[1])
    ds = DataSet("data", "w", path=cfg["path"], backend=cfg["backend"], timeout=30)
    log = os.open(cfg["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sizes = cfg["sizes"]
    vid = cfg["first_id"]
    for i in range(cfg["max_writes"]):
        item = "small" if i % 2 == 0 else "large"
        setattr(ds, item, value(vid, sizes[item]))
        os.write(log, f"{item} {vid}\n".encode())
        vid += 1
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    main()
