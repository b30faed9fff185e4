"""Helper: tries to write item ``x`` with a lock ``timeout``; prints what happened as JSON."""

import json
import sys
import time

from persist_hooks.dataset import DataSet
from persist_hooks.errors import LockTimeout


def main() -> None:
    cfg = json.loads(sys.argv[1])
    ds = DataSet("data", "w", path=cfg["path"], timeout=cfg["timeout"])
    t0 = time.monotonic()
    try:
        ds.x = cfg["value"]
    except LockTimeout as exc:
        print(
            json.dumps(
                {
                    "result": "LockTimeout",
                    "message": str(exc),
                    "lock_path": exc.lock_path,
                    "seconds": time.monotonic() - t0,
                }
            )
        )
    else:
        print(json.dumps({"result": "written", "seconds": time.monotonic() - t0}))


if __name__ == "__main__":
    main()
