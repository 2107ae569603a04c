"""Answerers the server drives itself: provider (against a fake OpenAI-compatible API),
inline and file scripted rules, answerer switch on alc_continue, human questions (§1.2)."""

from __future__ import annotations

import json
import re
import tempfile
import time

import anyio
import pytest

from conftest import connect, err, ok
from fake_llm import FakeLLM

pytestmark = pytest.mark.anyio

ANSWERED = re.compile(r"^(q-\d+) answered by openai:fake-model in \d+\.\d s \(12 tokens\)$")
THREE = 'local a = alc.llm("one") local b = alc.llm_batch({{prompt="two"},{prompt="three"}}) return {a, b[1], b[2]}'


async def test_provider_completes_in_one_call_with_progress():
    with FakeLLM() as fake:
        async with connect(env=fake.env()) as s:
            seen: list[tuple[str | None, float]] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append((message, time.monotonic()))

            r = await ok(s, "alc_run", {"code": THREE, "answerer": "provider"}, progress_callback=on_progress)
            t_resp = time.monotonic()
            assert r["status"] == "completed", r
            assert r["result"] == ["echo: one", "echo: two", "echo: three"]
            auto = r["stats"]["auto"]
            assert auto["answered_by"] == {"provider": 3}
            assert auto["llm_calls"] == 3
            assert auto["usage_by_model"]["openai:fake-model"]["calls"] == 3
            msgs = [m for m, _ in seen]
            assert msgs[0] == f"session {r['session_id']} started"
            answered = [m for m in msgs if m and ANSWERED.match(m)]
            assert len(answered) == 3, msgs
            assert sorted(ANSWERED.match(m).group(1) for m in answered) == ["q-0", "q-0", "q-1"]
            assert all(t <= t_resp for _, t in seen)
            n = len(seen)
            await anyio.sleep(1.0)
            assert len(seen) == n, "no progress after the response"
            # the request carried the model, the user prompt and the bearer key
            assert fake.requests[0]["model"] == "fake-model"
            assert fake.requests[0]["messages"][-1] == {"role": "user", "content": "one"}
            assert fake.headers[0]["authorization"] == "Bearer sk-test"
            lst = await ok(s, "alc_sessions", {})
            assert lst["sessions"][0]["answerer"] == "provider"


async def test_provider_retry_progress():
    with FakeLLM() as fake:
        fake.failures = [429]
        async with connect(env=fake.env()) as s:
            msgs: list[str | None] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                msgs.append(message)

            r = await ok(s, "alc_run", {"code": 'return alc.llm("hi")', "answerer": "provider"},
                         progress_callback=on_progress)
            assert r["status"] == "completed" and r["result"] == "echo: hi"
            assert any(m and m.startswith("q-0 retry 1 after 429") for m in msgs), msgs
            assert any(m and ANSWERED.match(m) for m in msgs), msgs


async def test_provider_model_argument_and_advice():
    with FakeLLM() as fake:
        async with connect(env=fake.env()) as s:
            r = await ok(s, "alc_run", {"code": 'return alc.llm("hi")', "answerer": "provider", "model": "other-model"})
            assert r["status"] == "completed"
            assert fake.requests[-1]["model"] == "other-model"
            assert "openai:other-model" in r["stats"]["auto"]["usage_by_model"]


async def test_provider_unavailable():
    async with connect() as s:
        e = await err(s, "alc_run", {"code": "return alc.llm('x')", "answerer": "provider"})
        assert e["code"] == "provider_unavailable"
        p = await ok(s, "alc_run", {"code": "return alc.llm('x')"})
        e = await err(s, "alc_continue", {"session_id": p["session_id"], "answerer": "provider"})
        assert e["code"] == "provider_unavailable"
        assert e["session_id"] == p["session_id"]
        # the session is untouched and still paused for the host
        st = await ok(s, "alc_status", {"session_id": p["session_id"]})
        assert st["phase"] == "paused" and st["answerer"] == "host"


async def test_continue_switches_host_session_to_provider():
    with FakeLLM() as fake:
        async with connect(env=fake.env()) as s:
            p = await ok(s, "alc_run", {"code": THREE})
            assert p["status"] == "needs_response" and p["prompt"] == "one"
            msgs: list[str | None] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                msgs.append(message)

            r = await ok(s, "alc_continue", {"session_id": p["session_id"], "answerer": "provider"},
                         progress_callback=on_progress)
            assert r["status"] == "completed", r
            assert r["result"] == ["echo: one", "echo: two", "echo: three"]
            assert r["stats"]["auto"]["answered_by"] == {"provider": 3}
            assert len([m for m in msgs if m and ANSWERED.match(m)]) == 3

            # answer the first round as host, hand the rest to the provider in the same call
            p = await ok(s, "alc_run", {"code": THREE})
            r = await ok(s, "alc_continue", {"session_id": p["session_id"], "response": "mine",
                                             "answerer": "provider"})
            assert r["status"] == "completed"
            assert r["result"] == ["mine", "echo: two", "echo: three"]
            assert r["stats"]["auto"]["answered_by"] == {"host": 1, "provider": 2}


async def test_provider_returns_human_questions_to_the_caller():
    code = (
        'local a = alc.llm("first") '
        'local h, st = alc.ask("Ship it?", {choices = {"yes", "no"}, default = "no"}) '
        'local b = alc.llm("after " .. h) return {a = a, h = h, st = st, b = b}'
    )
    with FakeLLM() as fake:
        async with connect(env=fake.env()) as s:
            p = await ok(s, "alc_run", {"code": code, "answerer": "provider"})
            assert p["status"] == "needs_response", p
            assert p["kind"] == "human" and p["question"] == "Ship it?"
            assert p["choices"] == ["yes", "no"] and "prompt" not in p
            r = await ok(s, "alc_continue", {"session_id": p["session_id"], "response": "yes", "round": p["round"]})
            assert r["status"] == "completed", r
            assert r["result"] == {"a": "echo: first", "h": "yes", "st": "accepted", "b": "echo: after yes"}


async def test_provider_wait_ms_returns_running_and_session_continues():
    with FakeLLM(delay_s=0.6) as fake:
        async with connect(env=fake.env()) as s:
            r = await ok(s, "alc_run", {"code": 'return alc.llm("slow")', "answerer": "provider", "wait_ms": 100})
            assert r["status"] == "running", r
            sid = r["session_id"]
            st = await ok(s, "alc_status", {"session_id": sid, "wait_ms": 5000})
            assert st["phase"] == "completed", st
            again = await ok(s, "alc_continue", {"session_id": sid})
            assert again["status"] == "completed" and again["result"] == "echo: slow"
            assert len(fake.requests) == 1


async def test_inline_script_array_and_jsonl():
    async with connect() as s:
        rules = [{"match": "capital", "response": "Paris", "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
                 {"response": "first {{n}}"}, {"default": "dunno"}]
        code = 'return {alc.llm("The capital of France?"), alc.llm("x"), alc.llm("y")}'
        msgs: list[str | None] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            msgs.append(message)

        r = await ok(s, "alc_run", {"code": code, "script": rules}, progress_callback=on_progress)
        assert r["status"] == "completed", r
        assert r["result"] == ["Paris", "first 2", "dunno"]
        assert r["stats"]["auto"]["answered_by"] == {"scripted": 3}
        assert "q-0 answered by scripted in 0.0 s (6 tokens)" in msgs
        jsonl = "\n".join(json.dumps(x) for x in rules)
        r = await ok(s, "alc_run", {"code": code, "script": jsonl, "answerer": "scripted"})
        assert r["result"] == ["Paris", "first 2", "dunno"]
        r = await ok(s, "alc_run", {"code": 'return alc.llm("q")', "script": [{"match": "zzz", "response": "a"}]})
        assert r["status"] == "error" and r["code"] == "scripted_no_match"
        e = await err(s, "alc_run", {"code": "return 1", "script": [1]})
        assert e["code"] == "invalid_params"
        e = await err(s, "alc_run", {"code": "return 1", "script": rules, "answerer": "host"})
        assert e["code"] == "invalid_params"
        e = await err(s, "alc_run", {"code": "return 1", "answerer": "scripted"})
        assert e["code"] == "invalid_params"
        e = await err(s, "alc_run", {"code": "return 1", "answerer": "terminal"})
        assert e["code"] == "invalid_params"
        e = await err(s, "alc_run", {"code": "return 1", "answerer": "mrtr"})
        assert e["code"] == "capability_missing"


async def test_scripted_file_and_human_channel():
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write('{"match": "2+2", "response": "4"}\n')
        path = f.name
    ask = 'local v, st = alc.ask("Ship?", {choices = {"yes", "no"}, default = "no"}) return {v = v, st = st}'
    async with connect() as s:
        r = await ok(s, "alc_run", {"code": 'return alc.llm("2+2?")', "answerer": f"scripted:{path}"})
        assert r["status"] == "completed" and r["result"] == "4"
        # no human lines: no channel, alc.ask returns its default with `unavailable`
        r = await ok(s, "alc_run", {"code": ask, "answerer": f"scripted:{path}"})
        assert r["result"] == {"v": "no", "st": "unavailable"}
        # a human line answers it
        r = await ok(s, "alc_run", {"code": ask, "script": [{"kind": "human", "match": "Ship", "response": "yes"}]})
        assert r["result"] == {"v": "yes", "st": "accepted"}
        e = await err(s, "alc_run", {"code": "return 1", "answerer": "scripted:/nonexistent/x.jsonl"})
        assert e["code"] == "invalid_params"


async def test_host_session_switched_to_scripted_returns_human_question():
    code = 'local a = alc.llm("x") local v, st = alc.ask("Ship?") return {a = a, v = v, st = st}'
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": code})
        assert p["prompt"] == "x"
        r = await ok(s, "alc_continue", {"session_id": p["session_id"], "script": [{"default": "auto"}]})
        assert r["status"] == "needs_response" and r["kind"] == "human", r
        r = await ok(s, "alc_continue", {"session_id": p["session_id"], "response": "sure"})
        assert r["status"] == "completed"
        assert r["result"] == {"a": "auto", "v": "sure", "st": "accepted"}


async def test_client_cancellation_of_provider_run():
    with FakeLLM(delay_s=2.0) as fake:
        async with connect(env=fake.env()) as s:
            with anyio.move_on_after(0.5):
                await s.call_tool("alc_run", {"code": 'return alc.llm("slow")', "answerer": "provider"})
            found = None
            for _ in range(40):
                lst = await ok(s, "alc_sessions", {"status": "cancelled"})
                if lst["sessions"]:
                    found = lst["sessions"][0]
                    break
                await anyio.sleep(0.1)
            assert found is not None
            assert found["reason"]["code"] == "client_cancelled"
            assert len(fake.requests) == 1
