"""What the Python `mcp` client itself spends on a tool call (not a test).

Runs this file as a stand-in MCP server that answers at once (`ping`, `tools/list` with
one tool, `tools/call` with a fixed structured result shaped like a completed `alc_run`)
and times, with the SDK client, a `ping` and a `call_tool` against it, under three output
schemas: a trivial one (`{"type": "object"}`), the smallest schema of the form
interfaces.md §3.3 asks for (a `oneOf` keyed on `status`, one branch per status and
nothing else), and the output schema `alc_run` declares (read from the `alc serve` at
`ALC_BIN`). The difference is the client's own cost of a tool call over a ping, which no
server can take away.

    ALC_BIN=target/release/alc python3 tests/mcp/bench_sdk_floor.py [--n 600]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time


def status_branches() -> list:
    """One branch per `status` of an execution tool and nothing else (the two pause forms
    told apart by their required `query_id` or `queries`)."""
    def branch(status: str, *required: str) -> dict:
        return {"properties": {"status": {"const": status}}, "required": ["status", *required]}
    return [branch("needs_response", "query_id"), branch("needs_response", "queries"),
            branch("accepted"), branch("completed"), branch("error"), branch("cancelled"),
            branch("running")]


RESULT = {"status": "completed", "session_id": "s-" + "0" * 32, "result": 1,
          "stats": {"auto": {"elapsed_ms": 0, "llm_calls": 0}, "custom": {}}}


def serve(schema_path: str) -> None:
    """The stand-in server: newline-delimited JSON-RPC on stdin/stdout."""
    with open(schema_path) as f:
        schema = json.load(f)
    text = json.dumps(RESULT)
    for line in sys.stdin:
        m = json.loads(line)
        if "id" not in m:
            continue
        method = m.get("method")
        if method == "initialize":
            r = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}},
                 "serverInfo": {"name": "stand-in", "version": "0"}}
        elif method == "tools/list":
            r = {"tools": [{"name": "t", "inputSchema": {"type": "object"}, "outputSchema": schema}]}
        elif method == "tools/call":
            r = {"content": [{"type": "text", "text": text}], "structuredContent": RESULT}
        else:
            r = {}
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}) + "\n")
        sys.stdout.flush()


async def measure(schema_path: str, n: int) -> dict:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable,
                                   args=[os.path.abspath(__file__), "--serve", schema_path])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            await s.list_tools()
            for _ in range(50):
                await s.send_ping()
                await s.call_tool("t", {})
            ping, call = [], []
            for _ in range(n):
                t = time.perf_counter()
                await s.send_ping()
                ping.append(time.perf_counter() - t)
                t = time.perf_counter()
                r = await s.call_tool("t", {"code": "return 1"})
                call.append(time.perf_counter() - t)
                assert not r.is_error
    p, c = statistics.median(ping) * 1000, statistics.median(call) * 1000
    return {"ping_ms": round(p, 3), "call_tool_ms": round(c, 3), "difference_ms": round(c - p, 3)}


def main(n: int) -> None:
    import anyio

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from rawclient import RawServer

    server = RawServer("bench_sdk_floor")
    tools = server.rpc("tools/list")["result"]["tools"]
    server.close()
    alc_run = next(t for t in tools if t["name"] == "alc_run")["outputSchema"]
    with tempfile.TemporaryDirectory(prefix="alc-sdk-floor-") as d:
        paths = {}
        for name, schema in (("trivial", {"type": "object"}),
                             ("oneOf_on_status", {"type": "object", "oneOf": status_branches()}),
                             ("alc_run", alc_run)):
            paths[name] = os.path.join(d, f"{name}.json")
            with open(paths[name], "w") as f:
                json.dump(schema, f)
        out = {name: anyio.run(measure, path, n) for name, path in paths.items()}
    print(json.dumps({"output_schema": out}, indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--serve", metavar="SCHEMA", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(a.serve)
    else:
        main(a.n)
