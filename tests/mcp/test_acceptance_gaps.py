"""Checklist items of interfaces.md §10 that the other MCP test files cover only in part.

Each test is named after the item it checks (`test_item_NN_...`).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import tempfile
import time

import anyio
import jsonschema
import pytest

from conftest import alc_bin, connect, err, ok
from fake_llm import FakeLLM
from rawrpc import RawServer, body as raw_body
from test_eval import DATASET, server as eval_server

pytestmark = pytest.mark.anyio


def write_package(root: str, name: str, source: str) -> None:
    os.makedirs(os.path.join(root, name), exist_ok=True)
    with open(os.path.join(root, name, "init.lua"), "w") as f:
        f.write(source)


async def test_item_03_object_typed_parameters():
    async with connect() as s:
        by = {t.name: t for t in (await s.list_tools()).tools}
        assert len(by) == 23
        assert by["alc_run"].input_schema["properties"]["ctx"]["type"] == "object"
        assert by["alc_advice"].input_schema["properties"]["opts"]["type"] == "object"
        assert by["alc_eval"].input_schema["properties"]["strategy_opts"]["type"] == "object"
        for t in by.values():
            assert t.input_schema is not None and t.output_schema is not None, t.name


async def test_item_04_every_result_validates_against_its_output_schema():
    async with connect() as s:
        schemas = {t.name: t.output_schema for t in (await s.list_tools()).tools}
        calls = [
            ("alc_run", {"code": "return 1+1"}, False),
            ("alc_run", {"code": 'return alc.llm("q")'}, False),
            ("alc_run", {"code": 'error("boom")'}, False),
            ("alc_run", {}, True),
            ("alc_advice", {"strategy": 'x") os.exit()'}, True),
            ("alc_continue", {"session_id": "s-" + "0" * 32, "response": "x"}, True),
            ("alc_status", {}, False),
            ("alc_status", {"pending_filter": "bogus"}, True),
            ("alc_sessions", {}, False),
            ("alc_cancel", {"session_id": "s-" + "0" * 32}, True),
            ("alc_info", {}, False),
            ("alc_log_view", {}, False),
            ("alc_stats", {}, False),
            ("alc_note", {"session_id": "s-" + "0" * 32, "content": "n"}, True),
            ("alc_pkg_list", {}, False),
            ("alc_pkg_remove", {"name": "no_such_pkg"}, True),
            ("alc_eval_history", {}, False),
            ("alc_eval_detail", {"eval_id": "nope_1"}, True),
            ("alc_scenario_list", {}, False),
            ("alc_scenario_show", {"name": "nope"}, True),
        ]
        seen_error = seen_ok = 0
        for name, args, expect_error in calls:
            result = await s.call_tool(name, args)
            assert len(result.content) == 1 and result.content[0].type == "text", (name, result.content)
            data = json.loads(result.content[0].text)
            assert data == result.structured_content, name
            assert bool(result.is_error) == expect_error, (name, data)
            jsonschema.validate(data, schemas[name])
            if result.is_error:
                seen_error += 1
            else:
                seen_ok += 1
        assert seen_error >= 9 and seen_ok >= 9


async def test_item_07_200_concurrent_trivial_runs():
    async with connect() as s:
        results: list[dict] = []

        async def one() -> None:
            results.append(await ok(s, "alc_run", {"code": "return 1"}))

        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(one)
        assert len(results) == 200
        assert all(r["status"] == "completed" and r["result"] == 1 for r in results)
        assert len({r["session_id"] for r in results}) == 200


async def test_item_21_fork_over_two_packages():
    with tempfile.TemporaryDirectory(prefix="alc-forkpkgs-") as pkgs:
        for name in ("left", "right"):
            write_package(pkgs, name, (
                "local M = {}\n"
                "function M.run(ctx)\n"
                f"  local a = alc.llm('{name} one ' .. ctx.task)\n"
                f"  local b = alc.llm('{name} two')\n"
                "  return a .. '+' .. b\n"
                "end\n"
                "return M\n"))
        code = ('local r = alc.fork({"left", "right"}, {task = "T"}) '
                'return {r[1].strategy, r[1].result, r[2].strategy, r[2].result}')
        async with connect(env={"ALC_PACKAGES_PATH": pkgs}) as s:
            p = await ok(s, "alc_run", {"code": code})
            rounds = 0
            while p["status"] == "needs_response":
                rounds += 1
                queries = p.get("queries") or [{"id": p["query_id"], "prompt": p["prompt"]}]
                assert all(q["id"].startswith("f-") for q in queries), queries
                responses = [{"query_id": q["id"], "response": q["prompt"].split()[1].upper()} for q in queries]
                p = await ok(s, "alc_continue", {"session_id": p["session_id"], "round": p["round"],
                                                 "responses": responses})
            assert rounds == 2
            assert p["status"] == "completed", p
            assert p["result"] == ["left", "ONE+TWO", "right", "ONE+TWO"]


async def test_item_23_advice_injection_executes_nothing():
    async with connect() as s:
        e = await err(s, "alc_advice", {"strategy": 'x") os.exit()'})
        assert e["code"] == "invalid_params"
        listed = await ok(s, "alc_sessions", {})
        assert listed["sessions"] == [] and listed["total"] == 0
        # the server is still alive and serving
        r = await ok(s, "alc_run", {"code": "return 'alive'"})
        assert r["result"] == "alive"


async def test_item_24_include_history_is_capped_at_ten():
    code = "local acc = '' for i = 1, 12 do acc = acc .. alc.llm('q' .. i) end return acc"
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": code})
        sid = p["session_id"]
        for _ in range(11):
            p = await ok(s, "alc_continue", {"session_id": sid, "response": "a", "round": p["round"]})
        assert p["status"] == "needs_response" and p["round"] == 12
        listed = await ok(s, "alc_status", {"include_history": True})
        entry = [x for x in listed["sessions"] if x["session_id"] == sid][0]
        history = entry["conversation_history"]
        assert isinstance(history, list) and 1 <= len(history) <= 10


def _cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[11] = utime, fields[12] = stime (after the state field at index 0)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_item_27_cancel_of_a_spinning_script_returns_cpu_to_idle():
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home, RawServer(home) as srv:
        srv.initialize("2025-11-25")
        r = raw_body(srv.request("tools/call", {"name": "alc_run",
                                                "arguments": {"code": "while true do end", "wait_ms": 200}}))
        assert r["status"] == "running"
        t0 = time.monotonic()
        c = raw_body(srv.request("tools/call", {"name": "alc_cancel", "arguments": {"session_id": r["session_id"]}}))
        assert time.monotonic() - t0 < 2.0
        assert c["status"] == "cancelled"
        time.sleep(0.3)
        before = _cpu_seconds(srv.proc.pid)
        time.sleep(1.5)
        used = _cpu_seconds(srv.proc.pid) - before
        assert used < 0.3, f"server used {used:.2f} s of CPU in 1.5 s after the cancel"


async def test_item_33_provider_progress_and_quiet_after_response():
    code = 'alc.progress(2, 5, "x") local a = alc.llm("one") local b = alc.llm("two") return a .. b'
    with FakeLLM() as fake:
        async with connect(env=fake.env()) as s:
            seen: list[tuple[str | None, float]] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append((message, time.monotonic()))

            r = await ok(s, "alc_run", {"code": code, "answerer": "provider"}, progress_callback=on_progress)
            t_resp = time.monotonic()
            assert r["status"] == "completed", r
            msgs = [m for m, _ in seen]
            assert msgs[0] is not None and r["session_id"] in msgs[0]
            assert "step 2/5: x" in msgs
            answered = [m for m in msgs if m and " answered by " in m]
            assert len(answered) >= r["stats"]["auto"]["llm_calls"] == 2, msgs
            assert all(t <= t_resp for _, t in seen)
            n = len(seen)
            await anyio.sleep(2.0)
            assert len(seen) == n, "no progress notification after the tool response"


async def test_item_62_host_eval_completes_with_eval_id_and_pass_rate():
    answers = {"What is 2+2?": "4", "What is 3*3?": "9", "Capital of France?": "Paris"}
    async with eval_server() as s:
        r = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET, "answerer": "host"})
        pauses = 0
        while r["status"] == "needs_response":
            pauses += 1
            r = await ok(s, "alc_continue", {"session_id": r["session_id"], "response": answers[r["prompt"]]})
        assert pauses == 3
        assert r["status"] == "completed", r
        assert r["eval_id"].startswith("echo_")
        assert r["result"]["eval_id"] == r["eval_id"]
        assert r["result"]["aggregated"]["pass_rate"] == 1.0


ASK = 'local v, st = alc.ask("Ship it?", {choices = {"yes", "no"}, default = "no"}) return {v = v, st = st}'


async def test_item_76_human_question_with_host_answerer():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": ASK, "answerer": "host"})
        sid = p["session_id"]
        assert p["status"] == "needs_response" and p["kind"] == "human"
        assert p["question"] == "Ship it?" and p["choices"] == ["yes", "no"] and p["default"] == "no"
        assert "prompt" not in p and "queries" not in p
        e = await err(s, "alc_continue", {"session_id": sid, "response": "maybe"})
        assert e["code"] == "invalid_params"
        st = await ok(s, "alc_status", {"session_id": sid})
        assert st["phase"] == "paused" and st["pending_queries"] == 1
        r = await ok(s, "alc_continue", {"session_id": sid, "response": "yes"})
        assert r["status"] == "completed" and r["result"] == {"v": "yes", "st": "accepted"}

        p = await ok(s, "alc_run", {"code": ASK, "answerer": "host"})
        r = await ok(s, "alc_continue", {"session_id": p["session_id"], "query_id": p["query_id"],
                                         "ask_status": "declined"})
        assert r["status"] == "completed" and r["result"] == {"v": "no", "st": "declined"}


async def test_item_77_schema_question_timeout_and_full_filter():
    schema_ask = ('local v, st = alc.ask("Details?", {schema = {type = "object", '
                  'properties = {n = {type = "integer"}, name = {type = "string"}}, required = {"n"}}}) '
                  'return {v = v, st = st}')
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": schema_ask})
        assert p["kind"] == "human"
        r = await ok(s, "alc_continue", {"session_id": p["session_id"], "responses": [
            {"query_id": p["query_id"], "response": {"n": 3, "name": "x"}}]})
        assert r["status"] == "completed", r
        assert r["result"] == {"v": {"n": 3, "name": "x"}, "st": "accepted"}

        timed = 'local v, st = alc.ask("Soon?", {default = "later", timeout_ms = 100}) return {v = v, st = st}'
        p = await ok(s, "alc_run", {"code": timed})
        sid = p["session_id"]
        assert p["kind"] == "human" and "expires_at" in p
        full = await ok(s, "alc_status", {"session_id": sid, "pending_filter": "full"})
        q = full["pending"][0]
        assert q["kind"] == "human" and "expires_at" in q
        final = None
        for _ in range(50):
            st = await ok(s, "alc_status", {"session_id": sid})
            if st["state"] == "terminal":
                final = st
                break
            await anyio.sleep(0.1)
        assert final is not None, "the question never timed out"
        r = await ok(s, "alc_continue", {"session_id": sid})
        assert r["status"] == "completed" and r["result"] == {"v": "later", "st": "timeout"}
        e = await err(s, "alc_continue", {"session_id": sid, "query_id": p["query_id"], "response": "now"})
        assert e["code"] == "not_paused"


def test_item_75_cli_sessions_list_equals_alc_sessions():
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home:
        with RawServer(home) as srv:
            srv.initialize("2025-11-25")
            for code in ("return 1", 'return alc.llm("q")', 'error("boom")'):
                raw_body(srv.request("tools/call", {"name": "alc_run", "arguments": {"code": code}}))
        # A server on the same home that hosts none of them, and the CLI, see the same list.
        with RawServer(home) as srv:
            srv.initialize("2025-11-25")
            via_tool = raw_body(srv.request("tools/call", {"name": "alc_sessions", "arguments": {}}))
            env = dict(os.environ, ALC_HOME=home)
            out = subprocess.run([alc_bin(), "sessions", "list", "--json"], env=env, capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        via_cli = json.loads(out.stdout)
        assert via_tool["total"] == 3
        assert {"completed", "resumable"} <= {x["status"] for x in via_tool["sessions"]}
        assert via_cli == via_tool


SIX_TEMPLATES = {
    "alc://packages/{name}/init.lua", "alc://packages/{name}/meta", "alc://scenarios/{name}",
    "alc://eval/{eval_id}", "alc://logs/{session_id}", "alc://sessions/{session_id}",
}


async def test_item_06_resources_templates_and_prompts():
    from mcp.shared.exceptions import MCPError
    from mcp.types import ResourceTemplateReference

    async with connect() as s:
        uris = [str(r.uri) for r in (await s.list_resources()).resources]
        assert "alc://types/alc.d.lua" in uris
        templates = {t.uri_template for t in (await s.list_resource_templates()).resource_templates}
        assert templates <= SIX_TEMPLATES
        assert {"alc://packages/{name}/init.lua", "alc://logs/{session_id}"} <= templates
        with pytest.raises(MCPError) as ei:
            await s.read_resource("alc://packages/no_such_pkg/init.lua")
        assert ei.value.error.code == -32002
        ref = ResourceTemplateReference(type="ref/resource", uri="alc://packages/{name}/init.lua")
        r = await s.complete(ref, {"name": "name", "value": "co"})
        assert "cot" in r.completion.values and all(v.startswith("co") for v in r.completion.values)
        assert [p.name for p in (await s.list_prompts()).prompts] == ["advice"]
        with pytest.raises(MCPError):
            await s.get_prompt("advice", {})


async def test_item_06_all_six_templates_listed_and_readable():
    async with eval_server() as s:
        templates = [t.uri_template for t in (await s.list_resource_templates()).resource_templates]
        assert len(templates) == 6 and set(templates) == SIX_TEMPLATES
        r = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET[:1], "script": [{"response": "4"}]})
        eval_id = r["result"]["eval_id"]
        read = await s.read_resource(f"alc://eval/{eval_id}")
        assert read.contents[0].mime_type == "application/json"
        assert json.loads(read.contents[0].text)["eval_id"] == eval_id
        # A scenario installed from a local directory reads back byte for byte.
        with tempfile.TemporaryDirectory(prefix="alc-scn-") as src:
            line = '{"input": "2+2", "expected": "4"}\n'
            with open(os.path.join(src, "tiny_math.jsonl"), "w") as f:
                f.write(line)
            await ok(s, "alc_scenario_install", {"url": src})
        read = await s.read_resource("alc://scenarios/tiny_math")
        assert read.contents[0].mime_type == "application/x-ndjson"
        assert read.contents[0].text == line


def test_item_06_missing_resource_under_2026_07_28_is_invalid_params():
    from rawrpc import RpcError, modern_meta

    with tempfile.TemporaryDirectory(prefix="alc-home-") as home, RawServer(home) as srv:
        with pytest.raises(RpcError) as e:
            srv.request("resources/read", {"uri": "alc://packages/no_such_pkg/init.lua", "_meta": modern_meta()})
        assert e.value.code == -32602
        ok_read = srv.request("resources/read", {"uri": "alc://packages/cot/init.lua", "_meta": modern_meta()})
        assert "M.meta" in ok_read["contents"][0]["text"]


async def test_item_25_status_wait_returns_as_soon_as_the_provider_session_ends():
    with FakeLLM(delay_s=0.5) as fake:
        async with connect(env=fake.env()) as s:
            r = await ok(s, "alc_run", {"code": 'return alc.llm("slow")', "answerer": "provider", "wait_ms": 50})
            assert r["status"] == "running", r
            t0 = time.monotonic()
            st = await ok(s, "alc_status", {"session_id": r["session_id"], "wait_ms": 20000})
            waited = time.monotonic() - t0
            assert st["phase"] == "completed", st
            assert waited < 5.0, f"alc_status waited {waited:.1f} s for a session that ended after ~0.5 s"
            # A session that pauses: the wait ends at the pause.
            code = 'local a = alc.llm("one") local v = alc.ask("Go?") return a .. v'
            r = await ok(s, "alc_run", {"code": code, "answerer": "provider", "wait_ms": 50})
            t0 = time.monotonic()
            st = await ok(s, "alc_status", {"session_id": r["session_id"], "wait_ms": 20000})
            waited = time.monotonic() - t0
            assert st["phase"] == "paused", st
            assert waited < 5.0


def test_item_34_cancelled_provider_call_gets_no_response():
    import queue

    with FakeLLM(delay_s=2.0) as fake, tempfile.TemporaryDirectory(prefix="alc-home-") as home, \
            RawServer(home, env=fake.env()) as srv:
        srv.initialize("2025-11-25")
        srv.send({"jsonrpc": "2.0", "id": 900, "method": "tools/call",
                  "params": {"name": "alc_run", "arguments": {"code": 'return alc.llm("slow")', "answerer": "provider"}}})
        time.sleep(0.5)
        srv.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                  "params": {"requestId": 900, "reason": "user"}})
        listed = None
        for _ in range(40):
            lst = raw_body(srv.request("tools/call", {"name": "alc_sessions", "arguments": {"status": "cancelled"}}))
            if lst["sessions"]:
                listed = lst["sessions"][0]
                break
            time.sleep(0.1)
        assert listed is not None
        assert listed["status"] == "cancelled" and listed["reason"]["code"] == "client_cancelled"
        # Wait past the provider's delay; nothing may answer request 900.
        deadline = time.monotonic() + 2.5
        frames: list[dict] = []
        while time.monotonic() < deadline:
            try:
                f = srv._frames.get(timeout=0.1)
            except queue.Empty:
                continue
            if f is not None:
                frames.append(f)
        assert not [f for f in frames if f.get("id") == 900], frames
        assert raw_body(srv.request("tools/call", {"name": "alc_run", "arguments": {"code": "return 1"}}))["result"] == 1


async def test_item_71_script_output_goes_to_the_session_logs():
    code = '''
print("via print")
io.write("via io.write\\n")
io.stdout:write("via io.stdout\\n")
return alc.llm("q")
'''
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": code})
        assert p["status"] == "needs_response", p
        st = await ok(s, "alc_status", {"session_id": p["session_id"]})
        logged = " ".join(e["message"] for e in st["metrics"]["recent_logs"])
        for text in ("via print", "via io.write", "via io.stdout"):
            assert text in logged, logged
        r = await ok(s, "alc_continue", {"session_id": p["session_id"], "response": "a"})
        assert r["status"] == "completed" and r["result"] == "a"


DURABLE = """
local a = alc.llm("first")
local b = alc.llm("second after " .. a)
local c = alc.llm("third after " .. b)
return {a = a, b = b, c = c}
"""


def _tool(srv: RawServer, name: str, args: dict) -> dict:
    return raw_body(srv.request("tools/call", {"name": name, "arguments": args}))


def test_item_29_sigkill_at_round_3_then_resume_completes_like_an_uninterrupted_run():
    answers = {1: "A", 2: "B", 3: "C"}
    with tempfile.TemporaryDirectory(prefix="alc-home-") as clean, RawServer(clean) as srv:
        srv.initialize("2025-11-25")
        p = _tool(srv, "alc_run", {"code": DURABLE})
        while p["status"] == "needs_response":
            p = _tool(srv, "alc_continue", {"session_id": p["session_id"], "round": p["round"],
                                            "response": answers[p["round"]]})
        uninterrupted = p["result"]
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home:
        srv = RawServer(home)
        try:
            srv.initialize("2025-11-25")
            p = _tool(srv, "alc_run", {"code": DURABLE})
            sid = p["session_id"]
            for r in (1, 2):
                p = _tool(srv, "alc_continue", {"session_id": sid, "round": r, "response": answers[r]})
            assert p["status"] == "needs_response" and p["round"] == 3
            srv.proc.kill()
            srv.proc.wait()
        finally:
            srv.close()
        with RawServer(home) as srv:
            srv.initialize("2025-11-25")
            listed = _tool(srv, "alc_sessions", {})
            entry = [e for e in listed["sessions"] if e["session_id"] == sid][0]
            assert entry["status"] == "resumable" and entry["round"] == 3
            done = _tool(srv, "alc_continue", {"session_id": sid, "round": 3, "response": "C"})
            assert done["status"] == "completed", done
            assert done["result"] == uninterrupted
            # Nothing before round 3 was asked again: the transcript holds exactly three exchanges.
            detail = _tool(srv, "alc_log_view", {"session_id": sid})
            rounds = sorted(x["round"] for x in detail["transcript"])
            assert rounds == [1, 2, 3], detail["transcript"]


async def test_item_10_server_sessions_see_only_allowed_process_variables():
    # `[sandbox] env_allow` (default: ALC_SHAPE_CHECK) applies to `alc serve` sessions too.
    async with connect(env={"ALC_SHAPE_CHECK": "1", "UNLISTED_SECRET": "s3cr3t"}) as s:
        r = await ok(s, "alc_run", {"code": 'return {os.getenv("ALC_SHAPE_CHECK") or "nil", '
                                            'os.getenv("UNLISTED_SECRET") or "nil"}'})
        assert r["status"] == "completed", r
        assert r["result"] == ["1", "nil"], r
