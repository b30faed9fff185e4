"""Helper: takes the DataSet's writer lock, prints ``locked``, and holds it until killed (<= 120 s)."""

import json
import sys
import time

from persist_hooks.dataset import DataSet


def main() -> None:
    cfg = json.loads(sys.argv[1])
    ds = DataSet("data", "w", path=cfg["path"])
    with ds.locked(timeout=30):
        print("locked", flush=True)
        time.sleep(cfg.get("hold", 120))
    print(json.dumps({"released": True}))


if __name__ == "__main__":
    main()
