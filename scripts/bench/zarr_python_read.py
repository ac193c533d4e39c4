#!/usr/bin/env python3
"""Reads one Zarr array whole with zarr-python and prints the best time as one JSON line.

The zarr-python leg of ``cargo run -p isotach-connectors --example read_throughput``:

    zarr_python_read.py STORE VARIABLE [--threads N] [--repeat R] [--concurrency C]

opens ``STORE/VARIABLE`` with ``zarr.open_array`` and times ``arr[...]`` ``R`` times, keeping the
best. zarr 3 decodes chunks on a thread pool (``threading.max_workers``, set to ``N``) fed by an
asyncio loop that keeps at most ``async.concurrency`` chunk reads in flight (zarr's default, 10,
unless ``--concurrency`` is given). Prints ``{"seconds": best, "bytes": n, ...}``.
"""

import argparse
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="path of the Zarr store (group)")
    parser.add_argument("variable", help="array inside the store, e.g. t2m")
    parser.add_argument("--threads", type=int, default=None,
                        help="zarr threading.max_workers (default: zarr's choice)")
    parser.add_argument("--repeat", type=int, default=3, help="reads; the best is kept")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="zarr async.concurrency (default: zarr's, 10)")
    args = parser.parse_args()

    import zarr

    # Must be set before zarr's first synchronous call: the thread pool is created lazily with
    # the configured size and then kept.
    settings = {}
    if args.threads is not None:
        settings["threading.max_workers"] = max(1, args.threads)
    if args.concurrency is not None:
        settings["async.concurrency"] = max(1, args.concurrency)
    if settings:
        zarr.config.set(settings)

    array = zarr.open_array(store=args.store, path=args.variable, mode="r")
    best = float("inf")
    nbytes = 0
    for i in range(max(1, args.repeat)):
        started = time.perf_counter()
        data = array[...]
        seconds = time.perf_counter() - started
        nbytes = int(data.nbytes)
        del data
        print(f"  zarr-python #{i + 1}: {seconds:.3f} s", file=sys.stderr)
        best = min(best, seconds)

    print(json.dumps({
        "seconds": best,
        "bytes": nbytes,
        "zarr": zarr.__version__,
        "threads": zarr.config.get("threading.max_workers"),
        "concurrency": zarr.config.get("async.concurrency"),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
