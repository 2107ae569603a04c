"""Sessions held paused by one `alc serve` (not a test).

Starts the server with a fresh ALC_HOME, opens N sessions that each pause in
`alc.llm` (pipelined `alc_run` calls, newline-delimited JSON-RPC over stdio),
then reports the server's resident memory before and after, the time taken,
`alc_sessions` agreement, and that sessions picked across the range still
complete through `alc_continue`.

    ALC_BIN=target/release/alc python3 tests/mcp/bench_paused.py [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawclient import RawServer  # noqa: E402


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main(n: int, window: int) -> None:
    binary = os.environ.get("ALC_BIN", "target/release/alc")
    s = RawServer("bench_paused", binary)
    s.tool("alc_run", {"code": "return 1"})  # warm-up
    before = rss_kb(s.proc.pid)
    sessions: list[str] = []
    t0 = time.perf_counter()
    in_flight = 0
    sent = 0
    while len(sessions) < n:
        while sent < n and in_flight < window:
            s.send("tools/call", {"name": "alc_run",
                                  "arguments": {"code": f"return alc.llm('question {sent}')"}})
            sent += 1
            in_flight += 1
        r = s.recv()
        in_flight -= 1
        p = r["result"]["structuredContent"]
        assert p["status"] == "needs_response", p
        sessions.append(p["session_id"])
    elapsed = time.perf_counter() - t0
    time.sleep(1.0)  # let background transcript writes settle
    after = rss_kb(s.proc.pid)
    listed = s.tool("alc_sessions", {"status": "paused", "limit": 1})
    picks = [sessions[0], sessions[n // 2], sessions[-1]]
    completed = 0
    for sid in picks:
        r = s.tool("alc_continue", {"session_id": sid, "query_id": "q-0", "response": "ok"})
        completed += r["status"] == "completed"
    db = os.path.getsize(os.path.join(s.home, "alc.db"))
    s.close(timeout=60)
    print(json.dumps({
        "binary": binary,
        "sessions": n,
        "open_s": round(elapsed, 2),
        "sessions_per_s": round(n / elapsed),
        "rss_before_kb": before,
        "rss_after_kb": after,
        "rss_per_paused_kb": round((after - before) / n, 1),
        "alc_sessions_total": listed.get("total"),
        "sample_completed": completed,
        "db_bytes": db,
    }, indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=64, help="requests in flight at once")
    a = ap.parse_args()
    main(a.n, a.window)
