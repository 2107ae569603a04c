"""Multi Round-Trip results and the sampling answerer (interfaces.md §3.8, §3.9;
acceptance §10 #35, #36, #37).

A 2026-07-28 client is driven with the `mcp` client (`discover()`, then
`call_tool(..., allow_input_required=True)` and retries carrying `input_responses` and
`request_state`); requests the client library would not send (a tampered state) go
through the raw JSON-RPC client of `rawrpc.py`. Sampling runs on a legacy
(2025-11-25) connection whose client implements the sampling callback.
"""

from __future__ import annotations

import os
import pathlib
import stat
import tempfile
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import alc_bin, err, ok, payload
from rawrpc import RawServer, body

pytestmark = pytest.mark.anyio

SESSION_META = "io.algocline/session_id"

BATCH_THEN_ONE = (
    'local a = alc.llm_batch({{prompt="A?"},'
    '{prompt="B?", system="Be brief.", max_tokens=50, temperature=0.2, model="m1"}}) '
    'local c = alc.llm("C?") '
    'return a[1] .. "|" .. a[2] .. "|" .. c'
)


def answer_for(params: Any) -> str:
    """The fake model: echoes the prompt text."""
    text = params.messages[0].content.text
    return f"echo {text}"


async def sampling_callback(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=answer_for(params)),
        model="fake-client-model",
    )


def sampled(text: str) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=text), model="fake-client-model"
    )


@asynccontextmanager
async def open_client(
    *, modern: bool, sampling: bool = True, config: str | None = None, callback: Any = None
) -> AsyncIterator[tuple[ClientSession, pathlib.Path]]:
    """A session against a fresh home: `discover()` (2026-07-28) or `initialize()`."""
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home:
        if config is not None:
            pathlib.Path(home, "config.toml").write_text(config)
        params = StdioServerParameters(command=alc_bin(), args=["serve"], env={"ALC_HOME": home})
        errlog = open(os.path.join(home, "stderr.log"), "w+")
        try:
            async with stdio_client(params, errlog=errlog) as (read, write):
                cb = (callback or sampling_callback) if sampling else None
                async with ClientSession(read, write, sampling_callback=cb) as s:
                    if modern:
                        await s.discover()
                    else:
                        await s.initialize()
                    yield s, pathlib.Path(home)
        finally:
            errlog.close()


async def mrtr_call(s: ClientSession, name: str, args: dict, **kw: Any) -> Any:
    return await s.call_tool(name, args, allow_input_required=True, **kw)


def requests_of(result: Any) -> dict[str, Any]:
    assert isinstance(result, types.InputRequiredResult), result
    assert result.request_state
    return dict(result.input_requests or {})


# ------------------------------------------------------------------ §10 #35


async def test_mrtr_input_required_round_trip_completes_the_run():
    async with open_client(modern=True) as (s, home):
        args = {"code": BATCH_THEN_ONE, "answerer": "mrtr"}
        first = await mrtr_call(s, "alc_run", args)
        reqs = requests_of(first)
        assert sorted(reqs) == ["q-0", "q-1"]
        sid = first.meta[SESSION_META]
        assert sid.startswith("s-")
        # Field mapping of §3.8.
        a = reqs["q-0"].params
        assert a.messages[0].role == "user" and a.messages[0].content.text == "A?"
        assert a.max_tokens == 1024 and a.system_prompt is None and a.include_context == "none"
        b = reqs["q-1"].params
        assert b.system_prompt == "Be brief." and b.max_tokens == 50
        assert b.temperature == pytest.approx(0.2)
        assert [h.name for h in b.model_preferences.hints] == ["m1"]
        # The key lives in the home, private.
        key = home / "secret.key"
        assert key.stat().st_size == 32
        assert stat.S_IMODE(key.stat().st_mode) == 0o600

        second = await mrtr_call(
            s,
            "alc_run",
            args,
            input_responses={k: sampled(answer_for(r.params)) for k, r in reqs.items()},
            request_state=first.request_state,
        )
        reqs2 = requests_of(second)
        assert list(reqs2) == ["q-0"] and reqs2["q-0"].params.messages[0].content.text == "C?"
        assert second.meta[SESSION_META] == sid

        done = await mrtr_call(
            s,
            "alc_run",
            args,
            input_responses={"q-0": sampled("echo C?")},
            request_state=second.request_state,
        )
        assert isinstance(done, types.CallToolResult) and done.result_type == "complete"
        body_ = payload(done)
        assert body_["status"] == "completed" and body_["session_id"] == sid
        assert body_["result"] == "echo A?|echo B?|echo C?"
        assert body_["stats"]["auto"]["answered_by"] == {"mrtr": 3}
        assert body_["stats"]["auto"]["response_tokens"]["source"] == "estimated"
        # The session is an ordinary one: visible to alc_status.
        status = payload(await s.call_tool("alc_status", {"session_id": sid}))
        assert status["phase"] == "completed" and status["answerer"] == "mrtr"


async def test_mrtr_rounds_driven_by_the_high_level_client():
    from mcp import Client

    with tempfile.TemporaryDirectory(prefix="alc-home-") as home:
        server = StdioServerParameters(command=alc_bin(), args=["serve"], env={"ALC_HOME": home})
        async with Client(server, mode="auto", sampling_callback=sampling_callback) as client:
            result = await client.call_tool("alc_run", {"code": BATCH_THEN_ONE, "answerer": "mrtr"})
            assert result.result_type == "complete"
            done = payload(result)
            assert done["status"] == "completed"
            assert done["result"] == "echo A?|echo B?|echo C?"


async def test_human_question_is_not_mapped_and_classic_switch():
    async with open_client(modern=True) as (s, _):
        # A human question is not mapped: the classic payload comes back as `complete`.
        ask = 'local v, st = alc.ask("Ship it?", {choices = {"yes", "no"}}) return v .. "/" .. st'
        r = await mrtr_call(s, "alc_run", {"code": ask, "answerer": "mrtr"})
        assert isinstance(r, types.CallToolResult)
        pause = payload(r)
        assert pause["status"] == "needs_response" and pause["kind"] == "human"
        done = payload(await s.call_tool("alc_continue", {"session_id": pause["session_id"], "response": "yes"}))
        assert done["result"] == "yes/accepted"

        # After one MRTR round the client may answer with the classic loop instead.
        first = await mrtr_call(s, "alc_run", {"code": 'return alc.llm("X?")', "answerer": "mrtr"})
        sid = first.meta[SESSION_META]
        assert list(requests_of(first)) == ["q-0"]
        classic = payload(await s.call_tool("alc_continue", {"session_id": sid, "response": "x"}))
        assert classic["status"] == "completed" and classic["result"] == "x"


async def test_alc_continue_can_hand_a_paused_session_to_mrtr():
    async with open_client(modern=True) as (s, _):
        pause = payload(await s.call_tool("alc_run", {"code": 'return alc.llm("A?") .. alc.llm("B?")'}))
        assert pause["status"] == "needs_response"
        args = {"session_id": pause["session_id"], "answerer": "mrtr", "response": "a"}
        first = await mrtr_call(s, "alc_continue", args)
        reqs = requests_of(first)
        assert list(reqs) == ["q-0"] and reqs["q-0"].params.messages[0].content.text == "B?"
        done = await mrtr_call(
            s, "alc_continue", args, input_responses={"q-0": sampled("b")}, request_state=first.request_state
        )
        assert payload(done)["result"] == "ab"


# ------------------------------------------------------------------ §10 #36


async def test_partial_input_responses_ask_only_for_the_missing_key():
    async with open_client(modern=True) as (s, _):
        args = {"code": BATCH_THEN_ONE, "answerer": "mrtr"}
        first = await mrtr_call(s, "alc_run", args)
        assert sorted(requests_of(first)) == ["q-0", "q-1"]
        partial = await mrtr_call(
            s, "alc_run", args, input_responses={"q-1": sampled("two")}, request_state=first.request_state
        )
        missing = requests_of(partial)
        assert list(missing) == ["q-0"] and missing["q-0"].params.messages[0].content.text == "A?"
        rest = await mrtr_call(
            s, "alc_run", args, input_responses={"q-0": sampled("one")}, request_state=partial.request_state
        )
        assert list(requests_of(rest)) == ["q-0"]  # the next round: `C?`
        done = await mrtr_call(s, "alc_run", args, input_responses={"q-0": sampled("three")}, request_state=rest.request_state)
        assert payload(done)["result"] == "one|two|three"


def _sampling_caps() -> dict:
    return {"sampling": {}}


def test_tampered_or_mismatched_request_state_is_refused_and_nothing_applied():
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home, RawServer(home) as srv:
        args = {"code": 'local a = alc.llm("A?") return a', "answerer": "mrtr"}
        first = srv.modern_call("alc_run", args, _sampling_caps())
        assert first["resultType"] == "input_required"
        assert list(first["inputRequests"]) == ["q-0"]
        assert first["inputRequests"]["q-0"]["method"] == "sampling/createMessage"
        sid = first["_meta"][SESSION_META]
        state = first["requestState"]
        answer = {"q-0": {"role": "assistant", "content": {"type": "text", "text": "forged"}, "model": "x"}}

        def refused(args_: dict, state_: str, tool: str = "alc_run") -> dict:
            r = srv.modern_call(tool, args_, _sampling_caps(), inputResponses=answer, requestState=state_)
            assert r.get("isError") is True, r
            assert r["resultType"] == "complete"
            b = body(r)
            assert b["code"] == "invalid_params"
            return b

        tampered = state[:-1] + ("0" if state[-1] != "0" else "1")
        assert "verification" in refused(args, tampered)["error"]
        # The round number edited inside the token breaks the seal too.
        parts = state.split(".")
        parts[2] = str(int(parts[2]) + 1)
        refused(args, ".".join(parts))
        # Same state, other arguments or other tool.
        assert "arguments" in refused({**args, "code": "return 0"}, state)["error"]
        refused({"strategy": "cot", "answerer": "mrtr"}, state, tool="alc_advice")
        # Nothing was applied: the session is still paused on q-0 in round 1.
        st = body(srv.modern_call("alc_status", {"session_id": sid, "pending_filter": "meta"}, _sampling_caps()))
        assert st["phase"] == "paused" and st["round"] == 1
        assert [p["query_id"] for p in st["pending"]] == ["q-0"]
        # The genuine state still works.
        ok_ = srv.modern_call("alc_run", args, _sampling_caps(), inputResponses=answer, requestState=state)
        assert ok_["resultType"] == "complete" and body(ok_)["result"] == "forged"


def test_mrtr_without_sampling_capability_is_capability_missing():
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home, RawServer(home) as srv:
        r = srv.modern_call("alc_run", {"code": "return 1", "answerer": "mrtr"}, {})
        assert r.get("isError") is True
        assert body(r)["code"] == "capability_missing"
        # A retry from a client without sampling is refused the same way.
        r = srv.modern_call("alc_run", {"code": "return 1"}, {}, requestState="alc1.x", inputResponses={})
        assert r.get("isError") is True and body(r)["code"] == "capability_missing"


async def test_mrtr_from_a_legacy_client_is_capability_missing():
    async with open_client(modern=False) as (s, _):
        e = await err(s, "alc_run", {"code": "return 1", "answerer": "mrtr"})
        assert e["code"] == "capability_missing"
    async with open_client(modern=True, sampling=False) as (s, _):
        e = await err(s, "alc_run", {"code": "return 1", "answerer": "mrtr"})
        assert e["code"] == "capability_missing"


async def test_mrtr_auto_configuration_needs_no_answerer():
    async with open_client(modern=True, config='[mcp]\nmrtr = "auto"\n') as (s, _):
        first = await mrtr_call(s, "alc_run", {"code": 'return alc.llm("Q?")'})
        assert list(requests_of(first)) == ["q-0"]
    async with open_client(modern=True, sampling=False, config='[mcp]\nmrtr = "auto"\n') as (s, _):
        # Without sampling the classic loop applies.
        r = await ok(s, "alc_run", {"code": 'return alc.llm("Q?")'})
        assert r["status"] == "needs_response"


# ------------------------------------------------------------------ §10 #37


async def test_sampling_answerer_completes_the_run_on_a_legacy_connection():
    seen: list[Any] = []

    async def callback(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        seen.append(params)
        return await sampling_callback(context, params)

    async with open_client(modern=False, callback=callback) as (s, _):
        r = await ok(s, "alc_run", {"code": BATCH_THEN_ONE, "answerer": "sampling"})
        assert r["status"] == "completed", r
        assert r["result"] == "echo A?|echo B?|echo C?"
        auto = r["stats"]["auto"]
        assert auto["answered_by"] == {"sampling": 3}
        assert auto["response_tokens"]["source"] == "estimated"
        assert len(seen) == 3
        b = next(p for p in seen if p.messages[0].content.text == "B?")
        assert b.system_prompt == "Be brief." and b.max_tokens == 50
        assert [h.name for h in b.model_preferences.hints] == ["m1"]
        assert b.include_context == "none"
        st = await ok(s, "alc_status", {"session_id": r["session_id"]})
        assert st["answerer"] == "sampling"


async def test_sampling_refused_when_configured_off_or_not_declared():
    async with open_client(modern=False, config='[mcp]\nsampling = "off"\n') as (s, _):
        e = await err(s, "alc_run", {"code": 'return alc.llm("Q?")', "answerer": "sampling"})
        assert e["code"] == "invalid_params" and "mcp.sampling" in e["error"]
    async with open_client(modern=False, sampling=False) as (s, _):
        e = await err(s, "alc_run", {"code": 'return alc.llm("Q?")', "answerer": "sampling"})
        assert e["code"] == "capability_missing"
    async with open_client(modern=True) as (s, _):
        e = await err(s, "alc_run", {"code": 'return alc.llm("Q?")', "answerer": "sampling"})
        assert e["code"] == "capability_missing"


async def test_sampling_request_refused_by_the_client_fails_the_call_in_lua():
    async def refuse(context: Any, params: types.CreateMessageRequestParams) -> types.ErrorData:
        return types.ErrorData(code=-1, message="user declined")

    async with open_client(modern=False, callback=refuse) as (s, _):
        code = 'local ok, e = pcall(alc.llm, "Q?") return ok and "answered" or "refused"'
        r = await ok(s, "alc_run", {"code": code, "answerer": "sampling"})
        assert r["status"] == "completed" and r["result"] == "refused"


async def test_sampling_requests_respect_the_concurrency_limit():
    import anyio

    active = 0
    peak = 0

    async def slow(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.2)
        active -= 1
        return await sampling_callback(context, params)

    with tempfile.TemporaryDirectory(prefix="alc-home-") as home:
        params = StdioServerParameters(
            command=alc_bin(), args=["serve"], env={"ALC_HOME": home, "ALC_MAX_CONCURRENCY": "2"}
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, sampling_callback=slow) as s:
                await s.initialize()
                code = "local r = alc.llm_batch({" + ",".join(f'{{prompt="p{i}"}}' for i in range(6)) + "}) return #r"
                r = await ok(s, "alc_run", {"code": code, "answerer": "sampling"})
                assert r["status"] == "completed" and r["result"] == 6
    assert peak == 2
