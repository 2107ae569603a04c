"""CPU the server spends per tool call (not a test).

Starts `alc serve`, sends N back-to-back calls with a bare newline-delimited JSON-RPC
client, and prints JSON with the wall time per call and the server's CPU time per call
(user + system of all its threads, from /proc/<pid>/stat, warm-up excluded).

    ALC_BIN=target/release/alc python3 tests/mcp/bench_cpu.py [--n 3000] [--call run|continue|ping]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import alc_bin  # noqa: E402
from rawclient import RawServer  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat(5) (utime, stime), counted after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(n: int, call: str) -> None:
    server = RawServer("bench_cpu")
    rpc, tool, pid = server.rpc, server.tool, server.proc.pid

    def once() -> None:
        if call == "ping":
            rpc("ping")
        elif call == "run":
            assert tool("alc_run", {"code": "return 1"})["status"] == "completed"
        else:
            sid = tool("alc_run", {"code": 'return alc.llm("q")'})["session_id"]
            r = tool("alc_continue", {"session_id": sid, "query_id": "q-0", "response": "a"})
            assert r["status"] == "completed", r

    for _ in range(50):
        once()
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    for _ in range(n):
        once()
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    server.close()
    print(json.dumps({
        "binary": alc_bin(),
        "call": call if call != "continue" else "run + continue",
        "n": n,
        "wall_us_per_call": round(wall / n * 1e6, 1),
        "server_cpu_us_per_call": round(cpu / n * 1e6, 1),
    }, indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--call", choices=["run", "continue", "ping"], default="run")
    a = ap.parse_args()
    main(a.n, a.call)
