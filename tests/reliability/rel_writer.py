"""Helper: one writer process of the concurrency test (config as JSON in argv[1]).

Each write goes to a random item of the shared list under ``ds.locked()``, and
its (item, id) is appended to the shared commit log only after the assignment
returned, still under the lock, so the log order is the commit order.
"""

import json
import os
import random
import sys
import time

from relhelpers import value

from persist_hooks.dataset import DataSet


def main() -> None:
    cfg = json.loads(sys.argv[1])
    ds = DataSet("data", "w", path=cfg["path"], backend=cfg["backend"], timeout=120)
    log = os.open(cfg["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    rng = random.Random(cfg["seed"])
    items = cfg["items"]
    deadline = time.monotonic() + 60
    while not os.path.exists(cfg["go"]):
        if time.monotonic() > deadline:
            sys.exit("no go signal within 60 s")
        time.sleep(0.002)
    t0 = time.monotonic()
    for i in range(cfg["writes"]):
        item = items[rng.randrange(len(items))]
        vid = cfg["writer"] * 1_000_000 + i + 1
        v = value(vid, cfg["size"])
        with ds.locked():
            setattr(ds, item, v)
            ds[item] = vid
            os.write(log, f"{item} {vid}\n".encode())
    print(json.dumps({"writes": cfg["writes"], "seconds": time.monotonic() - t0}))


if __name__ == "__main__":
    main()
