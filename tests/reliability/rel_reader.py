"""Helper: a reader process of the concurrency test: reads every item in a loop until told to stop.

Counts reads, absent items (not written yet), errors (any exception, or a
torn value found by ``check``) and *stale* reads: values whose lazy arrays
failed only because a writer replaced the item (``<item>.py`` changed) between
opening and reading them -- the known hdf5/zarr lazy-proxy bug, counted apart
so the test can tell it from a torn commit.  Prints JSON.  Stops at the stop file or after
``max_seconds``.
"""

import json
import os
import sys
import time
from pathlib import Path

from relhelpers import check

from persist_hooks._fileio import file_signature
from persist_hooks.dataset import DataSet


def main() -> None:
    cfg = json.loads(sys.argv[1])
    ds = DataSet("data", "r", path=cfg["path"])
    deadline = time.monotonic() + cfg["max_seconds"]
    while not os.path.exists(cfg["go"]):
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.002)
    reads = absent = errors = stale = 0
    first_errors: list[str] = []
    first_stale: list[str] = []
    root = Path(cfg["path"]) / "data"
    ids: dict[str, list[int]] = {}
    while not os.path.exists(cfg["stop"]) and time.monotonic() < deadline:
        for item in cfg["items"]:
            try:
                before = file_signature(root / f"{item}.py")
                try:
                    v = getattr(ds, item)
                except AttributeError:
                    absent += 1
                    continue
                try:
                    vid = check(v)
                except Exception as exc:
                    if file_signature(root / f"{item}.py") == before:
                        raise
                    stale += 1
                    if len(first_stale) < 3:
                        first_stale.append(f"{item}: {type(exc).__name__}: {exc}"[:300])
                    continue
                meta = ds[item] if item in ds else None  # noqa: SIM401 (DataSet has no .get)
                if meta is not None and not isinstance(meta, int):
                    raise AssertionError(f"metadata of {item} is {meta!r}")
                seen = ids.setdefault(item, [])
                if not seen or seen[-1] != vid:
                    seen.append(vid)
                reads += 1
            except Exception as exc:
                errors += 1
                if len(first_errors) < 5:
                    first_errors.append(f"{item}: {type(exc).__name__}: {exc}")
    print(
        json.dumps(
            {
                "reads": reads,
                "absent": absent,
                "errors": errors,
                "first_errors": first_errors,
                "stale": stale,
                "first_stale": first_stale,
                "seen": ids,
            }
        )
    )


if __name__ == "__main__":
    main()
