"""Eval and scenario tools (interfaces.md §2.12, §8; checklist 62–66) with scripted answers."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import asynccontextmanager

import pytest

from conftest import connect, err, ok
from fake_llm import FakeLLM

pytestmark = pytest.mark.anyio

ECHO = """
local M = {}
M.meta = {name = "%s", description = "answers with the LLM's reply to the task"}
function M.run(ctx) return alc.llm(ctx.task) end
return M
"""

DATASET = [
    {"id": "add", "input": "What is 2+2?", "expected": "4"},
    {"id": "mul", "input": "What is 3*3?", "expected": "9"},
    {"id": "cap", "input": "Capital of France?", "expected": "Paris"},
]
SCRIPT = [
    {"match": "2+2", "response": "4"},
    {"match": "3*3", "response": "10"},
    {"match": "France", "response": "Paris"},
]


@asynccontextmanager
async def server(home: str | None = None, extra_env: dict[str, str] | None = None):
    """A server whose package path holds the strategies `echo` and `echo2` (on `home`
    when given, else a fresh one; `extra_env` added to its environment)."""
    with tempfile.TemporaryDirectory(prefix="alc-evalpkgs-") as pkgs:
        for name in ("echo", "echo2"):
            os.makedirs(os.path.join(pkgs, name))
            with open(os.path.join(pkgs, name, "init.lua"), "w") as f:
                f.write(ECHO % name)
        env = {"ALC_PACKAGES_PATH": pkgs, **(extra_env or {})}
        if home is not None:
            env["ALC_HOME"] = home
        async with connect(env=env) as s:
            yield s


async def test_eval_inline_dataset_with_script_answerer():
    async with server() as s:
        r = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET, "script": SCRIPT})
        assert r["status"] == "completed", r
        assert r["eval_id"].startswith("echo_")
        rep = r["result"]
        assert rep["eval_id"] == r["eval_id"]
        agg = rep["aggregated"]
        assert agg["total"] == 3 and agg["passed"] == 2 and agg["failed"] == 1
        assert agg["pass_rate"] == 2 / 3
        assert [c["case_id"] for c in rep["cases"]] == ["add", "mul", "cap"]
        assert [c["passed"] for c in rep["cases"]] == [True, False, True]
        assert rep["cases"][1]["output"] == "10"
        assert r["stats"]["auto"]["llm_calls"] == 3


async def test_eval_graders_numeric_and_exact_lower():
    async with server() as s:
        num = await ok(s, "alc_eval", {
            "strategy": "echo",
            "dataset": [{"id": "n", "input": "How many?", "expected": 1234}],
            "graders": [{"type": "numeric"}],
            "script": [{"default": "The answer is 1,234."}],
        })
        assert num["result"]["aggregated"]["pass_rate"] == 1.0
        assert num["result"]["cases"][0]["grades"][0]["type"] == "numeric"
        # exact with `lower`: "PARIS" vs "paris " passes; plain exact does not.
        ds = [{"id": "c", "input": "Capital?", "expected": "PARIS"}]
        low = await ok(s, "alc_eval", {
            "strategy": "echo", "dataset": ds, "script": [{"default": "paris "}],
            "graders": [{"type": "exact", "normalize": ["trim", "lower"]}],
        })
        assert low["result"]["aggregated"]["passed"] == 1
        plain = await ok(s, "alc_eval", {"strategy": "echo", "dataset": ds, "script": [{"default": "paris"}]})
        assert plain["result"]["aggregated"]["passed"] == 0
        bad = await err(s, "alc_eval", {"strategy": "echo", "dataset": ds, "script": [{"default": "x"}],
                                        "graders": [{"type": "bogus"}]})
        assert bad["code"] == "invalid_params"
        bad = await err(s, "alc_eval", {"strategy": "echo", "dataset": [{"expected": "x"}],
                                        "script": [{"default": "x"}]})
        assert bad["code"] == "invalid_params"
        both = await err(s, "alc_eval", {"strategy": "echo", "dataset": ds, "scenario_name": "x",
                                         "script": [{"default": "x"}]})
        assert both["code"] == "invalid_params"
        missing = await err(s, "alc_eval", {"strategy": "nope", "dataset": ds, "script": [{"default": "x"}]})
        assert missing["code"] == "package_not_found"


async def test_history_detail_compare():
    async with server() as s:
        a = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET, "script": SCRIPT})
        b = await ok(s, "alc_eval", {"strategy": "echo2", "dataset": DATASET, "script": [{"default": "4"}]})
        c = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET, "script": [{"default": "Paris"}]})
        h = await ok(s, "alc_eval_history")
        assert [e["eval_id"] for e in h["evals"]] == [c["eval_id"], b["eval_id"], a["eval_id"]]
        assert h["evals"][0]["pass_rate"] == 1 / 3
        only = await ok(s, "alc_eval_history", {"strategy": "echo2"})
        assert [e["eval_id"] for e in only["evals"]] == [b["eval_id"]]
        assert (await ok(s, "alc_eval_history", {"limit": 1}))["evals"][0]["eval_id"] == c["eval_id"]

        d = await ok(s, "alc_eval_detail", {"eval_id": a["eval_id"]})
        assert d["eval_id"] == a["eval_id"] and d["status"] == "completed"
        assert d["meta"]["strategy"] == "echo" and d["meta"]["total_cases"] == 3
        assert d["result"]["aggregated"]["passed"] == a["result"]["aggregated"]["passed"] == 2
        assert d["result"]["cases"][1]["output"] == "10"
        e = await err(s, "alc_eval_detail", {"eval_id": "echo_1"})
        assert e["code"] == "eval_not_found"

        cmp = await ok(s, "alc_eval_compare", {"eval_id_a": a["eval_id"], "eval_id_b": b["eval_id"]})
        assert cmp["status"] == "completed"
        res = cmp["result"]
        assert res["a"]["eval_id"] == a["eval_id"] and res["b"]["eval_id"] == b["eval_id"]
        assert abs(res["comparison"]["delta_mean"] - (2 / 3 - 1 / 3)) < 1e-9
        assert res["comparison"]["paired"]["wins"] == 1
        again = await ok(s, "alc_eval_compare", {"eval_id_a": a["eval_id"], "eval_id_b": b["eval_id"]})
        assert again == cmp
        e = await err(s, "alc_eval_compare", {"eval_id_a": a["eval_id"], "eval_id_b": "nope_1"})
        assert e["code"] == "eval_not_found"


async def test_scenario_install_list_show_and_run_by_name():
    with tempfile.TemporaryDirectory(prefix="alc-scen-") as src:
        with open(os.path.join(src, "arith.jsonl"), "w") as f:
            for c in DATASET:
                f.write(json.dumps(c) + "\n")
        os.makedirs(os.path.join(src, "scenarios"))
        with open(os.path.join(src, "scenarios", "simple.lua"), "w") as f:
            f.write('return {name = "simple", cases = {{input = "What is 2+2?", expected = "4"}}, '
                    'graders = {"exact_match"}}')
        with open(os.path.join(src, "README.md"), "w") as f:
            f.write("not a scenario")
        async with server() as s:
            assert (await ok(s, "alc_scenario_list")) == {"scenarios": [], "failures": []}
            r = await ok(s, "alc_scenario_install", {"url": src})
            assert r["installed"] == ["arith.jsonl", "simple.lua"] and r["skipped"] == []
            r = await ok(s, "alc_scenario_install", {"url": src})
            assert r["skipped"] == ["arith.jsonl", "simple.lua"]
            r = await ok(s, "alc_scenario_install", {"url": src, "force": True})
            assert r["installed"] == ["arith.jsonl", "simple.lua"]
            lst = await ok(s, "alc_scenario_list")
            assert [(x["name"], x["format"], x["cases"]) for x in lst["scenarios"]] == [
                ("arith", "jsonl", 3), ("simple", "lua", 1)]
            assert lst["failures"] == []
            assert all(x["size_bytes"] > 0 for x in lst["scenarios"])
            sh = await ok(s, "alc_scenario_show", {"name": "simple"})
            assert sh["format"] == "lua" and "exact_match" in sh["content"]
            assert sh["path"].endswith("scenarios/simple.lua")
            e = await err(s, "alc_scenario_show", {"name": "nope"})
            assert e["code"] == "scenario_not_found"
            e = await err(s, "alc_scenario_show", {"name": "../x"})
            assert e["code"] == "invalid_params"
            empty = tempfile.mkdtemp(prefix="alc-empty-")
            e = await err(s, "alc_scenario_install", {"url": empty})
            os.rmdir(empty)
            assert e["code"] == "invalid_params"

            run = await ok(s, "alc_eval", {"strategy": "echo", "scenario_name": "arith", "script": SCRIPT})
            assert run["result"]["scenario"] == "arith"
            assert run["result"]["aggregated"]["passed"] == 2
            simple = await ok(s, "alc_eval", {"strategy": "echo", "scenario_name": "simple", "script": SCRIPT})
            assert simple["result"]["aggregated"]["pass_rate"] == 1.0
            hist = await ok(s, "alc_eval_history", {"scenario": "arith"})
            assert [e["eval_id"] for e in hist["evals"]] == [run["eval_id"]]
            e = await err(s, "alc_eval", {"strategy": "echo", "scenario_name": "nope", "script": SCRIPT})
            assert e["code"] == "scenario_not_found"
            inline = await ok(s, "alc_eval", {
                "strategy": "echo", "script": SCRIPT,
                "scenario": 'return {cases = {{input = "Capital of France?", expected = "paris"}}, '
                            'graders = {"contains"}}'})
            assert inline["result"]["aggregated"]["passed"] == 1


async def test_eval_progress_one_notification_per_case():
    async with server() as s:
        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        r = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET, "script": SCRIPT,
                                     "concurrency": 1}, progress_callback=on_progress)
        assert r["status"] == "completed"
        assert [(p, t) for p, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]
        assert seen[-1][2] == "eval: 3/3 cases done"


HOST_ANSWERS = {"What is 2+2?": "4", "What is 3*3?": "10", "Capital of France?": "Paris"}


async def test_eval_host_answerer_surfaces_each_case_as_pauses():
    async with server() as s:
        # No provider and no answerer: the caller answers, one case at a time.
        r = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET})
        seen, sessions = [], []
        while r["status"] == "needs_response":
            assert r["round"] == 1 and r["query_id"] == "q-0", r
            assert r["eval_id"].startswith("echo_")
            seen.append((r["eval"]["case_id"], r["eval"]["case"], r["eval"]["cases"], r["prompt"]))
            sessions.append(r["session_id"])
            # Only the current case is running.
            st = await ok(s, "alc_sessions", {"status": "paused"})
            assert [x["session_id"] for x in st["sessions"]] == [r["session_id"]]
            r = await ok(s, "alc_continue", {"session_id": r["session_id"],
                                             "response": HOST_ANSWERS[r["prompt"]]})
        assert seen == [("add", 1, 3, "What is 2+2?"), ("mul", 2, 3, "What is 3*3?"),
                        ("cap", 3, 3, "Capital of France?")]
        assert len(set(sessions)) == 3
        assert r["status"] == "completed", r
        assert r["session_id"] == sessions[-1]
        rep = r["result"]
        assert rep["eval_id"] == r["eval_id"] and rep["answerer"] == "host"
        assert rep["aggregated"]["total"] == 3 and rep["aggregated"]["passed"] == 2
        assert [c["session_id"] for c in rep["cases"]] == sessions
        assert [c["passed"] for c in rep["cases"]] == [True, False, True]
        stored = await ok(s, "alc_eval_detail", {"eval_id": r["eval_id"]})
        assert stored["result"]["aggregated"]["passed"] == 2


async def test_eval_host_judge_needs_a_judge_answerer():
    async with server() as s:
        e = await err(s, "alc_eval", {"strategy": "echo", "dataset": DATASET, "answerer": "host",
                                      "graders": [{"type": "llm_judge", "rubric": "correct?"}]})
        assert e["code"] == "invalid_params" and "judge_answerer" in e["error"]
        e = await err(s, "alc_eval", {"strategy": "echo", "dataset": DATASET, "script": SCRIPT,
                                      "resample": True, "cache": False})
        assert e["code"] == "invalid_params" and "resample" in e["error"]


async def test_eval_resumes_after_a_server_restart():
    with tempfile.TemporaryDirectory(prefix="alc-evalhome-") as home:
        async with server(home) as s:
            r = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET, "answerer": "host"})
            r = await ok(s, "alc_continue", {"session_id": r["session_id"], "response": "4"})
            assert r["eval"]["case_id"] == "mul", r
            eval_id, mul_session = r["eval_id"], r["session_id"]
        # The server is gone with the eval at its second case; a new one finishes it.
        async with server(home) as s:
            e = await err(s, "alc_eval", {"strategy": "echo2", "resume": eval_id})
            assert e["code"] == "invalid_params" and "echo" in e["error"]
            again = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET})
            assert any(eval_id in w for w in again.get("warnings", [])), again
            r = await ok(s, "alc_eval", {"strategy": "echo", "resume": eval_id})
            assert r["status"] == "needs_response" and r["session_id"] == mul_session, r
            assert r["eval"]["case_id"] == "mul" and r["eval_id"] == eval_id
            r = await ok(s, "alc_continue", {"session_id": r["session_id"], "response": "10"})
            r = await ok(s, "alc_continue", {"session_id": r["session_id"], "response": "Paris"})
            assert r["status"] == "completed" and r["eval_id"] == eval_id, r
            rep = r["result"]
            assert [c["case_id"] for c in rep["cases"]] == ["add", "mul", "cap"]
            assert [c["passed"] for c in rep["cases"]] == [True, False, True]
            assert rep["cases"][1]["session_id"] == mul_session
            e = await err(s, "alc_eval", {"strategy": "echo", "resume": eval_id})
            assert e["code"] == "invalid_params" and "already finished" in e["error"]


async def test_eval_tools_listed_with_annotations():
    async with server() as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        names = [t for t in tools]
        assert names[-7:] == ["alc_eval", "alc_eval_history", "alc_eval_detail", "alc_eval_compare",
                              "alc_scenario_list", "alc_scenario_show", "alc_scenario_install"]
        for n in ("alc_eval_history", "alc_eval_detail", "alc_eval_compare", "alc_scenario_list",
                  "alc_scenario_show"):
            assert tools[n].annotations.read_only_hint is True, n
        for n in ("alc_eval", "alc_scenario_install"):
            assert tools[n].annotations.open_world_hint is True, n


async def test_eval_provider_answers_are_cached_and_resample_asks_again():
    with FakeLLM() as fake:
        async with server(extra_env=fake.env()) as s:
            args = {"strategy": "echo", "dataset": DATASET, "answerer": "provider"}
            first = await ok(s, "alc_eval", args)
            assert len(fake.requests) == 3
            assert first["stats"]["auto"]["cache_hits"] == 0
            outputs = [c["output"] for c in first["result"]["cases"]]
            assert outputs == ["echo: What is 2+2?", "echo: What is 3*3?", "echo: Capital of France?"]
            # The same eval again is answered from the cache: no provider call.
            again = await ok(s, "alc_eval", args)
            assert len(fake.requests) == 3
            assert again["stats"]["auto"]["cache_hits"] == 3
            assert [c["output"] for c in again["result"]["cases"]] == outputs
            assert "3 answers from the cache" in again["result"]["summary"]
            # `resample` asks again (and refreshes the cache); `cache: false` bypasses it.
            fresh = await ok(s, "alc_eval", {**args, "resample": True})
            assert len(fake.requests) == 6 and fresh["stats"]["auto"]["cache_hits"] == 0
            await ok(s, "alc_eval", {**args, "cache": False})
            assert len(fake.requests) == 9


async def test_eval_takes_the_project_run_defaults_and_reports_lib_path_warnings():
    """`alc_eval` without an answerer uses the server project's `[run] answerer`, and its
    report carries the project's `lib_path_warnings` (as alc_run and alc_advice do)."""
    with tempfile.TemporaryDirectory(prefix="alc-evalproj-") as proj:
        with open(os.path.join(proj, "alc.toml"), "w") as f:
            f.write('[run]\nanswerer = "scripted:answers.jsonl"\n\n[packages]\ncot = "9.9.9"\n')
        with open(os.path.join(proj, "answers.jsonl"), "w") as f:
            f.write('{"match": "2+2", "response": "4"}\n{"default": "from the project"}\n')
        async with server(extra_env={"ALC_PROJECT_ROOT": proj}) as s:
            r = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET[:2]})
            assert r["status"] == "completed", r
            cases = r["result"]["cases"]
            assert [(c["case_id"], c["passed"], c["output"]) for c in cases] == [
                ("add", True, "4"), ("mul", False, "from the project")], cases
            w = r["lib_path_warnings"]
            assert any("'cot'" in x and "9.9.9" in x for x in w), w
            # An explicit answerer still wins over the project's.
            r = await ok(s, "alc_eval", {"strategy": "echo", "dataset": DATASET[:1],
                                        "script": [{"default": "5"}]})
            assert r["result"]["cases"][0]["passed"] is False, r
