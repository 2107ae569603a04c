"""Round-trip latency of `alc serve` over stdio (not a test).

Prints JSON with the median (and p90) milliseconds of: an MCP `ping`, a trivial
`alc_run {"code":"return 1"}`, one `alc_continue` answering a paused session, and
`alc_status` of an unknown session (an error) and with no arguments (a listing).

    ALC_BIN=target/release/alc python3 tests/mcp/bench_roundtrip.py [--n 200] [--raw]

`--raw` drives the server with a bare newline-delimited JSON-RPC client instead (no
Python SDK on the path), which leaves the server's own time, and adds `alc_status`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import anyio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import alc_bin, connect, payload  # noqa: E402
from rawclient import RawServer  # noqa: E402


def summary(samples: list[float]) -> dict:
    s = sorted(samples)
    return {
        "median_ms": round(statistics.median(s) * 1000, 3),
        "p90_ms": round(s[int(len(s) * 0.9) - 1] * 1000, 3),
        "n": len(s),
    }


async def main(n: int) -> None:
    async with connect() as s:
        for _ in range(20):  # warm-up
            await s.send_ping()
            await s.call_tool("alc_run", {"code": "return 1"})
        ping, run, cont = [], [], []
        for _ in range(n):
            t = time.perf_counter()
            await s.send_ping()
            ping.append(time.perf_counter() - t)
        for _ in range(n):
            t = time.perf_counter()
            r = await s.call_tool("alc_run", {"code": "return 1"})
            run.append(time.perf_counter() - t)
            assert payload(r)["status"] == "completed"
        for _ in range(n):
            p = payload(await s.call_tool("alc_run", {"code": 'return alc.llm("q")'}))
            t = time.perf_counter()
            r = await s.call_tool("alc_continue", {"session_id": p["session_id"], "query_id": "q-0", "response": "a"})
            cont.append(time.perf_counter() - t)
            assert payload(r)["status"] == "completed"
        # The client's own cost of a structured result: `alc_status` of an unknown
        # session is an error (not validated against the output schema), a listing is a
        # result (validated); the server answers both in tens of microseconds.
        unknown, listing = [], []
        for _ in range(n):
            t = time.perf_counter()
            r = await s.call_tool("alc_status", {"session_id": "s-" + "0" * 32})
            unknown.append(time.perf_counter() - t)
            assert r.is_error
            t = time.perf_counter()
            r = await s.call_tool("alc_status", {})
            listing.append(time.perf_counter() - t)
            assert not r.is_error
    print(json.dumps({
        "binary": alc_bin(),
        "ping": summary(ping),
        "alc_run_trivial": summary(run),
        "alc_continue": summary(cont),
        "alc_status_unknown_session": summary(unknown),
        "alc_status_listing": summary(listing),
    }, indent=2))


def main_raw(n: int) -> None:
    server = RawServer("bench_roundtrip")
    call, tool = server.rpc, server.tool

    def timed(f) -> list[float]:
        for _ in range(20):
            f()
        out = []
        for _ in range(n):
            t = time.perf_counter()
            f()
            out.append(time.perf_counter() - t)
        return out

    ping = timed(lambda: call("ping"))
    run = timed(lambda: tool("alc_run", {"code": "return 1"}))
    status = timed(lambda: tool("alc_status", {}))
    cont = []
    for _ in range(n):
        sid = tool("alc_run", {"code": 'return alc.llm("q")'})["session_id"]
        t = time.perf_counter()
        r = tool("alc_continue", {"session_id": sid, "query_id": "q-0", "response": "a"})
        cont.append(time.perf_counter() - t)
        assert r["status"] == "completed", r
    server.close()
    print(json.dumps({
        "binary": alc_bin(),
        "client": "raw",
        "ping": summary(ping),
        "alc_run_trivial": summary(run),
        "alc_continue": summary(cont),
        "alc_status": summary(status),
    }, indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--raw", action="store_true", help="bare JSON-RPC client instead of the SDK")
    a = ap.parse_args()
    if a.raw:
        main_raw(a.n)
    else:
        anyio.run(main, a.n)
