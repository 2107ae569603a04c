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
import subprocess
import sys
import tempfile
import time


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Server:
    def __init__(self, binary: str, home: str) -> None:
        self.p = subprocess.Popen(
            [binary, "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "ALC_HOME": home},
            bufsize=0,
        )
        self.next_id = 0
        self.out = self.p.stdout

    def send(self, method: str, params: dict | None = None) -> int:
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.p.stdin.write((json.dumps(msg) + "\n").encode())
        return self.next_id

    def recv(self) -> dict:
        while True:
            line = self.out.readline()
            if not line:
                raise RuntimeError("server closed stdout")
            msg = json.loads(line)
            if "id" in msg:
                return msg

    def call(self, method: str, params: dict | None = None) -> dict:
        i = self.send(method, params)
        while True:
            r = self.recv()
            if r["id"] == i:
                return r

    def tool(self, name: str, args: dict) -> dict:
        r = self.call("tools/call", {"name": name, "arguments": args})
        return r["result"]["structuredContent"]


def main(n: int, window: int) -> None:
    binary = os.environ.get("ALC_BIN", "target/release/alc")
    home = tempfile.mkdtemp(prefix="alc-paused-")
    s = Server(binary, home)
    s.call("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                          "clientInfo": {"name": "bench_paused", "version": "1"}})
    s.p.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    s.tool("alc_run", {"code": "return 1"})  # warm-up
    before = rss_kb(s.p.pid)
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
    after = rss_kb(s.p.pid)
    listed = s.tool("alc_sessions", {"status": "paused", "limit": 1})
    picks = [sessions[0], sessions[n // 2], sessions[-1]]
    completed = 0
    for sid in picks:
        r = s.tool("alc_continue", {"session_id": sid, "query_id": "q-0", "response": "ok"})
        completed += r["status"] == "completed"
    db = os.path.getsize(os.path.join(home, "alc.db"))
    s.p.stdin.close()
    s.p.wait(timeout=60)
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
