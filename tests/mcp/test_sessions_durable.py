"""`alc_sessions` over the journal (interfaces.md §2.9, §9.2; checklist 29): a session left
paused by a killed server is listed `resumable` by a new server, `alc_status` reads it, and
`alc_continue` finishes it."""

from __future__ import annotations

import os
import signal
import tempfile
from contextlib import asynccontextmanager

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import alc_bin, ok

pytestmark = pytest.mark.anyio

SCRIPT = """
local a = alc.llm("first?")
local b = alc.llm("second after " .. a)
local c = alc.llm("third after " .. b)
return a .. b .. c
"""


@asynccontextmanager
async def server(home: str, pidfile: str):
    """`alc serve` started through a shell that records its pid (to SIGKILL it)."""
    params = StdioServerParameters(
        command="sh",
        args=["-c", f'echo $$ > "{pidfile}"; exec "{alc_bin()}" serve'],
        env={"ALC_HOME": home, "PATH": os.environ.get("PATH", "")},
    )
    with open(os.path.join(home, "stderr.log"), "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def test_killed_server_session_is_listed_resumable_and_continues():
    with tempfile.TemporaryDirectory(prefix="alc-sessions-") as home:
        pidfile = os.path.join(home, "pid")
        sid = done_id = None
        try:
            async with server(home, pidfile) as s:
                done = await ok(s, "alc_run", {"code": "return 7", "ctx": {"task": "finished one"}})
                done_id = done["session_id"]
                first = await ok(s, "alc_run", {"code": SCRIPT, "ctx": {"task": "the durable task"}})
                sid = first["session_id"]
                second = await ok(s, "alc_continue", {"session_id": sid, "response": "A", "round": 1})
                assert second["status"] == "needs_response" and second["round"] == 2
                mine = await ok(s, "alc_sessions", {"status": "paused"})
                assert [e["session_id"] for e in mine["sessions"]] == [sid]
                assert mine["sessions"][0]["owner"] == "this_process"
                os.kill(int(open(pidfile).read().strip()), signal.SIGKILL)
        except BaseException:
            pass  # the client notices the dead server when its context closes
        assert sid is not None and done_id is not None

        async with server(home, pidfile) as s:
            listing = await ok(s, "alc_sessions")
            by = {e["session_id"]: e for e in listing["sessions"]}
            assert listing["total"] == 2 and listing["has_more"] is False
            assert [e["session_id"] for e in listing["sessions"]] == [sid, done_id]  # newest first
            e = by[sid]
            assert e["status"] == "resumable" and e["resumable"] is True
            assert e["owner"] == "none" and e["round"] == 2 and e["kind"] == "run"
            assert e["task_hint"] == "the durable task"
            assert e["llm_calls"] >= 1
            assert by[done_id]["status"] == "completed" and by[done_id]["owner"] == "none"
            only = await ok(s, "alc_sessions", {"status": "resumable"})
            assert [x["session_id"] for x in only["sessions"]] == [sid]
            paged = await ok(s, "alc_sessions", {"limit": 1})
            assert paged["total"] == 2 and paged["has_more"] is True and len(paged["sessions"]) == 1
            assert (await ok(s, "alc_sessions", {"status": "paused"}))["sessions"] == []

            st = await ok(s, "alc_status", {"session_id": sid, "pending_filter": "full"})
            assert st["phase"] == "paused" and st["round"] == 2
            assert st["pending"][0]["prompt"] == "second after A"

            third = await ok(s, "alc_continue", {"session_id": sid, "response": "B", "round": 2})
            assert third["status"] == "needs_response" and third["prompt"] == "third after B"
            now = await ok(s, "alc_sessions", {"status": "paused"})
            assert [x["session_id"] for x in now["sessions"]] == [sid]
            assert now["sessions"][0]["owner"] == "this_process"
            fin = await ok(s, "alc_continue", {"session_id": sid, "response": "C", "round": 3})
            assert fin["status"] == "completed" and fin["result"] == "ABC"
            after = await ok(s, "alc_sessions", {"status": "resumable"})
            assert after["sessions"] == []
