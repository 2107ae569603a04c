"""End-to-end tests of `alc serve` through the official Python MCP client."""

from __future__ import annotations

import json
import os
import pathlib
import re
import tempfile
import time

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from conftest import ROOT, call, connect, err, ok

pytestmark = pytest.mark.anyio

TOOLS = [
    "alc_run", "alc_advice", "alc_continue", "alc_status", "alc_cancel", "alc_sessions", "alc_info",
    "alc_log_view", "alc_stats", "alc_note",
    "alc_pkg_list", "alc_pkg_install", "alc_pkg_remove", "alc_pkg_link", "alc_pkg_unlink", "alc_init",
    "alc_eval", "alc_eval_history", "alc_eval_detail", "alc_eval_compare",
    "alc_scenario_list", "alc_scenario_show", "alc_scenario_install",
]
AUTO_KEYS = {
    "elapsed_ms", "llm_calls", "pauses", "rounds", "total_prompt_chars", "total_response_chars",
    "prompt_tokens", "response_tokens", "total_tokens", "answered_by",
}
TWO = 'local a = alc.llm_batch({{prompt="A?"},{prompt="B?"}}) return a[1] .. "|" .. a[2]'


def crate_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


async def test_initialize_server_info():
    async with connect() as s:
        init = s.init_result
        assert init.server_info.name == "algocline"
        assert init.server_info.version == crate_version()
        assert init.protocol_version == "2025-11-25"
        assert init.capabilities.tools is not None


async def test_tools_list_names_and_schemas():
    async with connect() as s:
        tools = (await s.list_tools()).tools
        assert [t.name for t in tools] == TOOLS
        for t in tools:
            assert t.input_schema["type"] == "object"
            assert t.output_schema is not None and t.output_schema["type"] == "object"
        by = {t.name: t for t in tools}
        assert by["alc_run"].input_schema["properties"]["ctx"]["type"] == "object"
        assert by["alc_advice"].input_schema["properties"]["opts"]["type"] == "object"
        assert by["alc_continue"].input_schema["required"] == ["session_id"]


async def test_run_completed_with_stats():
    async with connect() as s:
        r = await ok(s, "alc_run", {"code": "return 1+1"})
        assert r["status"] == "completed"
        assert r["result"] == 2
        assert r["session_id"].startswith("s-") and len(r["session_id"]) == 34
        assert AUTO_KEYS <= set(r["stats"]["auto"])
        assert r["stats"]["custom"] == {}


async def test_single_pause_and_continue():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": 'return alc.llm("What is 2+2? Reply with the number only.")'})
        assert p["status"] == "needs_response"
        assert p["query_id"] == "q-0" and p["round"] == 1
        assert p["system"] is None and p["max_tokens"] == 1024
        assert "grounded" not in p
        r = await ok(s, "alc_continue", {"session_id": p["session_id"], "query_id": "q-0", "response": "4", "round": 1})
        assert r["status"] == "completed" and r["result"] == "4"
        assert r["session_id"] == p["session_id"]
        assert r["stats"]["auto"]["answered_by"] == {"host": 1}


async def test_llm_options_shown_in_pause():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": 'return alc.llm("p", {system="S", max_tokens=50, temperature=0.2, model="m"})'})
        assert (p["system"], p["max_tokens"], p["temperature"], p["model"]) == ("S", 50, 0.2, "m")
        assert "grounded" not in p


async def test_batch_answered_out_of_order():
    async with connect() as s:
        code = 'local r = alc.llm_batch({{prompt="a"},{prompt="b"},{prompt="c"}}) return table.concat(r, ",")'
        p = await ok(s, "alc_run", {"code": code})
        assert [q["id"] for q in p["queries"]] == ["q-0", "q-1", "q-2"]
        responses = [{"query_id": f"q-{i}", "response": x} for i, x in reversed(list(enumerate("ABC")))]
        r = await ok(s, "alc_continue", {"session_id": p["session_id"], "responses": responses})
        assert r["status"] == "completed" and r["result"] == "A,B,C"


async def test_partial_answers_then_rest():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": TWO})
        sid = p["session_id"]
        a = await ok(s, "alc_continue", {"session_id": sid, "query_id": "q-0", "response": "x"})
        assert a == {"status": "accepted", "session_id": sid, "round": 1, "remaining": 1, "pending": ["q-1"]}
        # identical re-send is a no-op; a different one is already_answered
        again = await ok(s, "alc_continue", {"session_id": sid, "query_id": "q-0", "response": "x"})
        assert again["status"] == "accepted"
        e = await err(s, "alc_continue", {"session_id": sid, "query_id": "q-0", "response": "other"})
        assert e["code"] == "already_answered" and e["session_id"] == sid
        # the single remaining query may be answered without query_id
        r = await ok(s, "alc_continue", {"session_id": sid, "response": "y"})
        assert r["status"] == "completed" and r["result"] == "x|y"


async def test_ambiguous_query():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": TWO})
        e = await err(s, "alc_continue", {"session_id": p["session_id"], "response": "x"})
        assert e["code"] == "ambiguous_query"
        assert "specify query_id" in e["error"]


async def test_unknown_query_applies_nothing():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": TWO})
        sid = p["session_id"]
        e = await err(s, "alc_continue", {"session_id": sid, "responses": [
            {"query_id": "q-7", "response": "x"}, {"query_id": "q-0", "response": "y"}]})
        assert e["code"] == "unknown_query"
        st = await ok(s, "alc_status", {"session_id": sid})
        assert st["pending_queries"] == 2
        e = await err(s, "alc_continue", {"session_id": sid, "responses": []})
        assert e["code"] == "invalid_params"


async def test_unknown_session_not_found():
    async with connect() as s:
        for sid in ["s-" + "0" * 32, "bogus"]:
            e = await err(s, "alc_continue", {"session_id": sid, "response": "x"})
            assert e["code"] == "session_not_found"
            assert "not found" in e["error"]
        e = await err(s, "alc_status", {"session_id": "s-" + "1" * 32})
        assert e["code"] == "session_not_found"


async def test_refetch_and_stale_round_and_resend():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": 'local a = alc.llm("one") local b = alc.llm("two") return a .. b'})
        sid = p["session_id"]
        again = await ok(s, "alc_continue", {"session_id": sid})
        assert again == p
        p2 = await ok(s, "alc_continue", {"session_id": sid, "query_id": "q-0", "response": "1", "round": 1})
        assert p2["status"] == "needs_response" and p2["round"] == 2 and p2["prompt"] == "two"
        e = await err(s, "alc_continue", {"session_id": sid, "query_id": "q-0", "response": "1", "round": 1})
        assert e["code"] == "stale_round"
        done = await ok(s, "alc_continue", {"session_id": sid, "query_id": "q-0", "response": "2", "round": 2})
        assert done["status"] == "completed" and done["result"] == "12"
        # identical re-send of the completing call: no-op returning the current payload
        resend = await ok(s, "alc_continue", {"session_id": sid, "query_id": "q-0", "response": "2", "round": 2})
        assert resend == done
        refetch = await ok(s, "alc_continue", {"session_id": sid})
        assert refetch == done
        e = await err(s, "alc_continue", {"session_id": sid, "query_id": "q-0", "response": "3", "round": 2})
        assert e["code"] == "not_paused"


async def test_ctx_as_json_string_and_code_exclusivity():
    async with connect() as s:
        r = await ok(s, "alc_run", {"code": "return ctx.x + ctx.y.z", "ctx": json.dumps({"x": 1, "y": {"z": 2}})})
        assert r["result"] == 3
        e = await err(s, "alc_run", {"code": "return 1", "code_file": "/nonexistent.lua"})
        assert e["code"] == "invalid_params" and "code" in e["error"]
        e = await err(s, "alc_run", {})
        assert e["code"] == "invalid_params"
        e = await err(s, "alc_run", {"code": "return 1", "ctx": "[1,2]"})
        assert e["code"] == "invalid_params" and "ctx" in e["error"]


async def test_code_file():
    async with connect() as s:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write("return 'from file'")
        try:
            r = await ok(s, "alc_run", {"code_file": f.name})
            assert r["result"] == "from file"
        finally:
            os.unlink(f.name)


async def test_lua_error_is_normal_result():
    async with connect() as s:
        body, is_error = await call(s, "alc_run", {"code": 'error("boom")'})
        assert not is_error
        assert body["status"] == "error" and body["code"] == "lua_error"
        assert "boom" in body["error"]
        assert "traceback" in body and body["session_id"].startswith("s-")
        assert AUTO_KEYS <= set(body["stats"]["auto"])


async def test_budget_exceeded():
    async with connect() as s:
        code = 'local a = alc.llm("one") local b = alc.llm("two") return a .. b'
        p = await ok(s, "alc_run", {"code": code, "ctx": {"budget": {"max_llm_calls": 1}}})
        r = await ok(s, "alc_continue", {"session_id": p["session_id"], "response": "1"})
        assert r["status"] == "error" and r["code"] == "budget_exceeded"


async def test_cancel_paused_then_not_paused_then_already_terminal():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": 'return alc.llm("q")'})
        sid = p["session_id"]
        c = await ok(s, "alc_cancel", {"session_id": sid, "reason": "no longer needed"})
        assert c["status"] == "cancelled" and c["previous_phase"] == "paused"
        assert c["reason"] == {"code": "user", "detail": "no longer needed"}
        e = await err(s, "alc_continue", {"session_id": sid, "response": "x"})
        assert e["code"] == "not_paused"
        c2 = await ok(s, "alc_cancel", {"session_id": sid})
        assert c2 == {"status": "cancelled", "session_id": sid, "already_terminal": True}
        e = await err(s, "alc_cancel", {"session_id": "s-" + "2" * 32})
        assert e["code"] == "session_not_found"


async def test_wait_ms_running_and_cancel_spinning_script():
    async with connect() as s:
        r = await ok(s, "alc_run", {"code": "while true do end", "wait_ms": 200})
        assert r["status"] == "running" and r["round"] == 0
        sid = r["session_id"]
        st = await ok(s, "alc_status", {"session_id": sid})
        assert st["phase"] == "running" and st["state"] == "running"
        t0 = time.monotonic()
        c = await ok(s, "alc_cancel", {"session_id": sid})
        assert time.monotonic() - t0 < 2.0
        assert c["status"] == "cancelled" and c["previous_phase"] == "running"
        listed = await ok(s, "alc_sessions", {"status": "cancelled"})
        assert [x["session_id"] for x in listed["sessions"]] == [sid]


async def test_status_list_single_and_filters():
    async with connect() as s:
        empty = await ok(s, "alc_status")
        assert empty == {"active_sessions": 0, "sessions": []}
        long_prompt = "x" * 500
        p = await ok(s, "alc_run", {"code": f'return alc.llm("{long_prompt}")'})
        sid = p["session_id"]
        lst = await ok(s, "alc_status")
        assert lst["active_sessions"] == 1
        entry = lst["sessions"][0]
        assert entry["session_id"] == sid and entry["state"] == "paused" and entry["phase"] == "paused"
        assert entry["round"] == 1 and entry["kind"] == "run" and entry["answerer"] == "host"
        assert entry["pending_queries"] == 1 and "pending" not in entry
        single = await ok(s, "alc_status", {"session_id": sid, "pending_filter": "preview"})
        assert single["pending"][0]["query_id"] == "q-0"
        assert len(single["pending"][0]["prompt_preview"]) == 200
        full = await ok(s, "alc_status", {"session_id": sid, "pending_filter": {"prompt": {"mode": "full"}, "max_tokens": True}})
        assert full["pending"][0]["prompt"] == long_prompt and full["pending"][0]["max_tokens"] == 1024
        e = await err(s, "alc_status", {"pending_filter": "bogus"})
        assert e["code"] == "invalid_params"
        done = await ok(s, "alc_run", {"code": "return 1"})
        single_done = await ok(s, "alc_status", {"session_id": done["session_id"]})
        assert single_done["state"] == "terminal" and single_done["phase"] == "completed"


async def test_sessions_status_filter():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": 'return alc.llm("hello there")', "ctx": {"task": "greet"}})
        c = await ok(s, "alc_run", {"code": "return 1"})
        paused = await ok(s, "alc_sessions", {"status": "paused"})
        assert paused["total"] == 1 and paused["has_more"] is False
        e = paused["sessions"][0]
        assert e["session_id"] == p["session_id"] and e["status"] == "paused"
        assert e["round"] == 1 and e["owner"] == "this_process" and e["resumable"] is False
        assert e["task_hint"] == "greet" and e["kind"] == "run" and e["strategy"] is None
        allv = await ok(s, "alc_sessions")
        assert {x["session_id"] for x in allv["sessions"]} == {p["session_id"], c["session_id"]}
        completed = await ok(s, "alc_sessions", {"status": "completed"})
        assert [x["session_id"] for x in completed["sessions"]] == [c["session_id"]]
        page = await ok(s, "alc_sessions", {"limit": 1})
        assert len(page["sessions"]) == 1 and page["has_more"] is True and page["total"] == 2
        bad = await err(s, "alc_sessions", {"status": "bogus"})
        assert bad["code"] == "invalid_params"


async def test_printing_script_keeps_protocol_intact():
    code = '''
print("hello from print")
pcall(function() io.write("via io.write\\n") end)
pcall(function() io.stdout:write("via io.stdout\\n") end)
return "done"
'''
    async with connect() as s:
        r = await ok(s, "alc_run", {"code": code})
        assert r["status"] == "completed" and r["result"] == "done"
        r2 = await ok(s, "alc_run", {"code": "return 2"})
        assert r2["result"] == 2
        p = await ok(s, "alc_run", {"code": 'print("logged line") return alc.llm("q")'})
        st = await ok(s, "alc_status", {"session_id": p["session_id"]})
        assert any("logged line" in e["message"] for e in st["metrics"]["recent_logs"])


async def test_no_subcommand_serves():
    async with connect(args=[]) as s:
        assert s.init_result.server_info.name == "algocline"
        r = await ok(s, "alc_run", {"code": "return 'x'"})
        assert r["result"] == "x"


async def test_progress_notifications():
    async with connect() as s:
        seen: list[tuple[float, str | None, float]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, message, time.monotonic()))

        code = 'alc.progress(2, 5, "x") return alc.llm("q")'
        p = await ok(s, "alc_run", {"code": code}, progress_callback=on_progress)
        t_resp = time.monotonic()
        sid = p["session_id"]
        msgs = [m for _, m, _ in seen]
        assert msgs[0] == f"session {sid} started"
        assert "step 2/5: x" in msgs
        assert [pr for pr, _, _ in seen] == list(range(1, len(seen) + 1))
        n = len(seen)
        await anyio.sleep(1.0)
        assert len(seen) == n, "no progress after the response"
        assert all(t <= t_resp for _, _, t in seen)
        # progress on alc_continue too
        seen.clear()
        code2 = 'local a = alc.llm("q") alc.progress(1, 0, "after") return a'
        p2 = await ok(s, "alc_run", {"code": code2})
        r = await ok(s, "alc_continue", {"session_id": p2["session_id"], "response": "z"}, progress_callback=on_progress)
        assert r["status"] == "completed"
        assert [m for _, m, _ in seen] == ["step 1: after"]


async def test_client_cancellation_cancels_session():
    async with connect() as s:
        with anyio.move_on_after(0.5):
            await s.call_tool("alc_run", {"code": "while true do end"})
        sid = None
        for _ in range(40):
            lst = await ok(s, "alc_sessions", {"status": "cancelled"})
            if lst["sessions"]:
                sid = lst["sessions"][0]["session_id"]
                assert lst["sessions"][0]["reason"]["code"] == "client_cancelled"
                break
            await anyio.sleep(0.1)
        assert sid is not None
        active = await ok(s, "alc_status")
        assert active["active_sessions"] == 0


async def test_unknown_tool_is_jsonrpc_error():
    async with connect() as s:
        with pytest.raises(MCPError) as ei:
            await s.call_tool("alc_v2_run", {"code": "return 1"})
        assert ei.value.error.code == -32602


async def test_200_concurrent_paused_sessions():
    async with connect() as s:
        results: list[dict] = []

        async def one(i: int) -> None:
            results.append(await ok(s, "alc_run", {"code": f'return alc.llm("question {i}")'}))

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
        assert len(results) == 200
        assert all(r["status"] == "needs_response" for r in results)
        assert len({r["session_id"] for r in results}) == 200
        st = await ok(s, "alc_status")
        assert st["active_sessions"] == 200


async def test_info():
    async with connect() as s:
        info = await ok(s, "alc_info")
        assert info["name"] == "algocline" and info["version"] == crate_version()
        assert info["home"]["source"] == "ALC_HOME"
        assert info["default_answerer"] == "host"
        assert "2025-11-25" in info["protocol_versions"]


async def test_advice_with_packages_path():
    with tempfile.TemporaryDirectory() as pkgs:
        pkg = pathlib.Path(pkgs) / "echo_strategy"
        pkg.mkdir()
        (pkg / "init.lua").write_text(
            "local M = {}\n"
            "function M.run(ctx)\n"
            "  local answer = alc.llm('Task: ' .. ctx.task, {system = ctx.style})\n"
            "  return {task = ctx.task, result = answer}\n"
            "end\n"
            "return M\n"
        )
        async with connect(env={"ALC_PACKAGES_PATH": pkgs}) as s:
            p = await ok(s, "alc_advice", {"strategy": "echo_strategy", "task": "What is 17 * 23?", "opts": '{"style": "terse"}'})
            assert p["status"] == "needs_response"
            assert p["prompt"] == "Task: What is 17 * 23?" and p["system"] == "terse"
            lst = await ok(s, "alc_sessions", {"kind": "advice"})
            assert lst["sessions"][0]["strategy"] == "echo_strategy"
            r = await ok(s, "alc_continue", {"session_id": p["session_id"], "response": "391"})
            assert r["status"] == "completed"
            assert r["result"] == {"task": "What is 17 * 23?", "result": "391"}
            e = await err(s, "alc_advice", {"strategy": 'x") os.exit()'})
            assert e["code"] == "invalid_params"
            e = await err(s, "alc_advice", {"strategy": "missing_pkg"})
            assert e["code"] == "package_not_found"
            e = await err(s, "alc_advice", {"strategy": "echo_strategy", "opts": "[1]"})
            assert e["code"] == "invalid_params"


async def test_host_only_answerer():
    async with connect() as s:
        e = await err(s, "alc_run", {"code": "return 1", "answerer": "provider"})
        assert e["code"] == "provider_unavailable"
        e = await err(s, "alc_run", {"code": "return 1", "answerer": "bogus"})
        assert e["code"] == "invalid_params"
