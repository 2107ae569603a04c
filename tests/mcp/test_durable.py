"""A paused session survives a killed server: a new server continues it from the journal."""

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
local t = os.time()
local b = alc.llm("second after " .. a)
local c = alc.llm("third after " .. b)
return {a = a, b = b, c = c, t = t}
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


async def test_paused_session_survives_sigkill_of_the_server():
    with tempfile.TemporaryDirectory(prefix="alc-durable-") as home:
        pidfile = os.path.join(home, "pid")
        session_id = None
        try:
            async with server(home, pidfile) as s:
                first = await ok(s, "alc_run", {"code": SCRIPT})
                assert first["status"] == "needs_response" and first["round"] == 1
                session_id = first["session_id"]
                second = await ok(s, "alc_continue", {"session_id": session_id, "response": "A", "round": 1})
                assert second["status"] == "needs_response" and second["round"] == 2
                assert second["prompt"] == "second after A"
                pid = int(open(pidfile).read().strip())
                os.kill(pid, signal.SIGKILL)
        except BaseException:
            # The client notices the dead server when its context closes; that is the point.
            pass
        assert session_id is not None

        async with server(home, pidfile) as s:
            # The same round-2 pause is shown again by a re-fetch, then answered.
            again = await ok(s, "alc_continue", {"session_id": session_id})
            assert again["status"] == "needs_response", again
            assert again["round"] == 2 and again["prompt"] == "second after A"
            third = await ok(s, "alc_continue", {"session_id": session_id, "response": "B", "round": 2})
            assert third["status"] == "needs_response" and third["prompt"] == "third after B"
            done = await ok(s, "alc_continue", {"session_id": session_id, "response": "C", "round": 3})
            assert done["status"] == "completed", done
            assert done["result"]["a"] == "A" and done["result"]["b"] == "B" and done["result"]["c"] == "C"
            assert isinstance(done["result"]["t"], int)


async def killed_after(home: str, pidfile: str, calls) -> str:
    """Runs `calls(session)` (which returns a session id) on a server, then SIGKILLs it."""
    session_id = None
    try:
        async with server(home, pidfile) as s:
            session_id = await calls(s)
            os.kill(int(open(pidfile).read().strip()), signal.SIGKILL)
    except BaseException:
        # The client notices the dead server when its context closes; anything earlier
        # is a failure of `calls`.
        if session_id is None:
            raise
    return session_id


async def test_a_running_reply_names_a_session_that_survives_sigkill():
    """`alc_run` writes a session's `spawned` record with its first step; when the call
    returns `running` before that step ends, the session is written before the reply."""

    async def calls(s):
        spin = await ok(s, "alc_run", {"code": "local x = 0 while true do x = x + 1 end", "wait_ms": 50})
        assert spin["status"] == "running", spin
        return spin["session_id"]

    with tempfile.TemporaryDirectory(prefix="alc-durable-") as home:
        pidfile = os.path.join(home, "pid")
        session_id = await killed_after(home, pidfile, calls)
        async with server(home, pidfile) as s:
            status = await ok(s, "alc_status", {"session_id": session_id})
            assert status["session_id"] == session_id, status
            cancelled = await ok(s, "alc_cancel", {"session_id": session_id})
            assert cancelled["session_id"] == session_id, cancelled


async def test_answers_behind_a_running_reply_survive_sigkill():
    """`alc_continue` writes a round's answers with the step they start; when the call
    returns `running` before that step ends, the answers are written before the reply."""

    async def calls(s):
        first = await ok(s, "alc_run", {"code": 'alc.llm("go?") local x = 0 while true do x = x + 1 end'})
        assert first["status"] == "needs_response", first
        spin = await ok(s, "alc_continue", {"session_id": first["session_id"], "response": "yes", "wait_ms": 50})
        assert spin["status"] == "running", spin
        return first["session_id"]

    with tempfile.TemporaryDirectory(prefix="alc-durable-") as home:
        pidfile = os.path.join(home, "pid")
        session_id = await killed_after(home, pidfile, calls)
        async with server(home, pidfile) as s:
            # Replayed past the answered pause: the session runs again, not asking anew.
            status = await ok(s, "alc_status", {"session_id": session_id})
            assert status["phase"] != "paused", status
            cancelled = await ok(s, "alc_cancel", {"session_id": session_id})
            assert cancelled["session_id"] == session_id, cancelled
