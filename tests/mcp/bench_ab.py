"""Side-by-side round trips of several `alc serve` binaries (not a test).

One server per binary, each driven by a bare JSON-RPC client; every iteration times a
`ping`, a trivial `alc_run` and an `alc_continue` on each server in turn, so the
machine's drift (which moves single-binary runs by 30-50 % here) hits all of them
alike. Servers are idle between their calls, so every call pays its thread wake-ups:
figures run higher than `bench_roundtrip.py --raw`, where calls follow each other.

    python3 tests/mcp/bench_ab.py [--n 2000] [--pace-ms MS] BINARY BINARY...

`--pace-ms` waits that long before each timed call, as a host does while its model
thinks: each call then meets a server (and a machine) that has been idle.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawclient import RawServer  # noqa: E402


def main(binaries: list[str], n: int, pace_ms: float) -> None:
    servers = [RawServer("bench_ab", b) for b in binaries]
    times = [{"ping": [], "alc_run_trivial": [], "alc_continue": []} for _ in binaries]
    try:
        for s in servers:  # warm-up
            for _ in range(200):
                s.rpc("ping")
                s.tool("alc_run", {"code": "return 1"})

        def pace() -> None:
            if pace_ms > 0:
                time.sleep(pace_ms / 1000)

        for _ in range(n):
            for s, t in zip(servers, times):
                pace()
                start = time.perf_counter()
                s.rpc("ping")
                t["ping"].append(time.perf_counter() - start)
                pace()
                start = time.perf_counter()
                r = s.tool("alc_run", {"code": "return 1"})
                t["alc_run_trivial"].append(time.perf_counter() - start)
                assert r["status"] == "completed", r
                sid = s.tool("alc_run", {"code": 'return alc.llm("q")'})["session_id"]
                pace()
                start = time.perf_counter()
                r = s.tool("alc_continue", {"session_id": sid, "query_id": "q-0", "response": "a"})
                t["alc_continue"].append(time.perf_counter() - start)
                assert r["status"] == "completed", r
    finally:
        for s in servers:
            s.close()
    print(json.dumps([
        {"binary": b, **{k: round(statistics.median(v) * 1000, 3) for k, v in t.items()}}
        for b, t in zip(binaries, times)
    ], indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--pace-ms", type=float, default=0.0,
                    help="idle time before each timed call (default: none, back to back)")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    main(a.binaries, a.n, a.pace_ms)
