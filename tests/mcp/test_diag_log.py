"""The diagnostic log of `alc serve` (interfaces.md §4.4, §9.4, §10 item 70): tool calls
and provider requests land in <home>/logs/alc-YYYY-MM-DD.log, prompts and keys never do,
and stdout carries nothing but the protocol even with verbose diagnostics on stderr."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import tempfile

import anyio
import pytest

from conftest import alc_bin, connect, err, ok
from fake_llm import FakeLLM

pytestmark = pytest.mark.anyio

PROMPT = "PROMPT-TEXT-93b1-name-three-rivers"
KEY = "sk-MCP-DIAG-SECRET-4e2a"


def todays_log(home: str) -> str:
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    path = pathlib.Path(home) / "logs" / f"alc-{day}.log"
    assert path.is_file(), sorted(os.listdir(pathlib.Path(home) / "logs"))
    return path.read_text()


def line_with(log: str, *needles: str) -> str:
    for line in log.splitlines():
        if all(n in line for n in needles):
            return line
    raise AssertionError(f"no line with {needles} in:\n{log}")


async def test_tool_calls_are_logged_with_session_and_outcome():
    async with connect() as s:
        home = os.path.dirname(s.stderr_path)  # type: ignore[attr-defined]
        r = await ok(s, "alc_run", {"code": 'return alc.llm("' + PROMPT + '")'})
        assert r["status"] == "needs_response"
        sid = r["session_id"]
        done = await ok(s, "alc_continue", {"session_id": sid, "response": "RESPONSE-TEXT-x"})
        assert done["status"] == "completed"
        e = await err(s, "alc_status", {"session_id": "s-" + "0" * 32})
        assert e["code"] == "session_not_found"
        # A call's line is written just after its reply.
        for _ in range(100):
            log = todays_log(home)
            if "tool=alc_status" in log:
                break
            await anyio.sleep(0.05)
        line_with(log, "tool call", "tool=alc_run", f"session_id={sid}", "outcome=needs_response", "duration_ms=")
        line_with(log, "tool call", "tool=alc_continue", f"session_id={sid}", "outcome=completed")
        line_with(log, "tool call failed", "tool=alc_status", "outcome=session_not_found")
        line_with(log, "alc started", "command=serve")
        assert PROMPT not in log and "RESPONSE-TEXT-x" not in log


def rpc(proc: subprocess.Popen, msg: dict) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(msg) + "\n")
    proc.stdin.flush()


def read_until_id(proc: subprocess.Popen, want: int, seen: list[str]) -> dict:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        assert line, "server closed stdout"
        seen.append(line)
        msg = json.loads(line)
        if msg.get("id") == want:
            return msg


def test_stdout_stays_protocol_only_with_debug_diagnostics():
    with FakeLLM() as fake, tempfile.TemporaryDirectory(prefix="alc-home-") as home:
        env = {**fake.env(), "OPENAI_API_KEY": KEY, "ALC_HOME": home, "PATH": os.environ.get("PATH", "")}
        proc = subprocess.Popen(
            [alc_bin(), "serve", "--log-level", "debug", "--color", "always"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        seen: list[str] = []
        try:
            rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "diag-test", "version": "0"}}})
            read_until_id(proc, 1, seen)
            rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            code = 'print("to the session log") return alc.llm("' + PROMPT + '")'
            rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "alc_run", "arguments": {"code": code, "answerer": "provider"}}})
            res = read_until_id(proc, 2, seen)
            body = json.loads(res["result"]["content"][0]["text"])
            assert body["status"] == "completed", body
            assert body["result"] == "echo: " + PROMPT
            sid = body["session_id"]
        finally:
            # Closing stdin (end of input) stops the server.
            rest, stderr = proc.communicate(timeout=30)
        seen.extend(rest.splitlines(keepends=True))
        assert proc.returncode == 0, stderr
        # Every stdout line is a JSON-RPC message; the diagnostics went to stderr.
        for line in seen:
            assert json.loads(line)["jsonrpc"] == "2.0", line
        assert "tool call" in stderr and "\x1b[" in stderr
        assert KEY not in stderr and PROMPT not in stderr
        log = todays_log(home)
        line_with(log, "tool call", "tool=alc_run", f"session_id={sid}", "outcome=completed")
        line_with(log, "provider request", "provider=openai", "model=fake-model", "status=200", "latency_ms=", "attempt=1")
        assert "\x1b[" not in log
        for secret in (PROMPT, KEY, "echo: "):
            assert secret not in log, secret
