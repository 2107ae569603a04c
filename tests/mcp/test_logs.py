"""Transcripts in <home>/alc.db: alc_log_view, alc_stats, alc_note (interfaces.md §2.10)."""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import subprocess
import tempfile

import pytest

from conftest import alc_bin, connect, err, ok
from fake_llm import FakeLLM

pytestmark = pytest.mark.anyio

ROUNDS = 'local out = {} for i = 1, 3 do out[i] = alc.llm(string.rep("p" .. i, 50)) end return out'


async def test_log_view_paused_then_completed_with_notes():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": 'print("hello log") local a = alc.llm("What is 2+2?") return a'})
        sid = p["session_id"]
        d = await ok(s, "alc_log_view", {"session_id": sid})
        assert d["status"] == "paused"
        assert [(e["query_id"], e["round"], e["prompt"], e["response"]) for e in d["transcript"]] == [
            ("q-0", 1, "What is 2+2?", None)]
        n = await ok(s, "alc_note", {"session_id": sid, "content": "looks fine", "title": "review"})
        assert n == {"session_id": sid, "notes_count": 1}
        r = await ok(s, "alc_continue", {"session_id": sid, "response": "4", "usage": {"prompt_tokens": 7, "completion_tokens": 1}})
        assert r["status"] == "completed"
        # The transcript is written with the journal: complete when the call returns.
        d = await ok(s, "alc_log_view", {"session_id": sid})
        assert d["status"] == "completed"
        ex = d["transcript"][0]
        assert ex["response"] == "4" and ex["answered_by"] == "host"
        assert ex["usage"]["prompt_tokens"] == 7
        assert isinstance(ex["started_at"], int) and isinstance(ex["answered_at"], int)
        assert d["notes"][0]["title"] == "review" and d["notes"][0]["content"] == "looks fine"
        assert isinstance(d["notes"][0]["timestamp"], int)
        assert any("hello log" in l["message"] for l in d["logs"])
        assert d["stats"]["auto"]["llm_calls"] == 1
        lst = await ok(s, "alc_log_view", {})
        meta = lst["sessions"][0]
        assert meta["session_id"] == sid and meta["notes_count"] == 1 and meta["llm_calls"] == 1
        assert meta["status"] == "completed" and meta["task_hint"] == "What is 2+2?"
        e = await err(s, "alc_log_view", {"session_id": "s-" + "0" * 32})
        assert e["code"] == "session_not_found"
        e = await err(s, "alc_note", {"session_id": "s-" + "0" * 32, "content": "x"})
        assert e["code"] == "session_not_found"
        info = await ok(s, "alc_info")
        db = pathlib.Path(info["database"])
        assert db.is_file()
        tables = {r[0] for r in sqlite3.connect(db).execute("select name from sqlite_master where type='table'")}
        assert {"transcript_sessions", "transcript_exchanges", "transcript_notes", "transcript_logs"} <= tables


async def test_a_session_run_from_the_cli_is_in_the_transcripts():
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home:
        (pathlib.Path(home) / "answers.jsonl").write_text('{"default": "4"}\n')
        (pathlib.Path(home) / "f.lua").write_text('print("from the cli") return alc.llm("What is 2+2?")')
        out = subprocess.run([alc_bin(), "run", "f.lua", "--answerer", "scripted:answers.jsonl"], cwd=home,
                             env={**os.environ, "ALC_HOME": home}, capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        sid = json.loads(out.stdout)["session_id"]
        async with connect(env={"ALC_HOME": home}) as s:
            d = await ok(s, "alc_log_view", {"session_id": sid})
            assert d["status"] == "completed" and d["task_hint"] == "What is 2+2?"
            assert [(e["prompt"], e["response"]) for e in d["transcript"]] == [("What is 2+2?", "4")]
            assert any("from the cli" in l["message"] for l in d["logs"])


async def test_provider_transcript_and_truncation():
    with FakeLLM() as fake:
        async with connect(env=fake.env()) as s:
            r = await ok(s, "alc_run", {"code": ROUNDS, "answerer": "provider"})
            assert r["status"] == "completed"
            sid = r["session_id"]
            d = await ok(s, "alc_log_view", {"session_id": sid})
            assert d["status"] == "completed" and len(d["transcript"]) == 3
            assert all(e["answered_by"] == "provider" and e["model"] == "openai:fake-model" for e in d["transcript"])
            assert d["transcript"][0]["usage"]["prompt_tokens"] == 10
            assert "truncated" not in d
            d = await ok(s, "alc_log_view", {"session_id": sid, "max_chars": 300})
            assert d["truncated"] is True and d["original_rounds"] == 3 and d["returned_rounds"] == 1
            assert [e["round"] for e in d["transcript"]] == [3]


async def test_stats_groups_runs_and_strategies():
    async with connect() as s:
        for _ in range(2):
            await ok(s, "alc_run", {"code": "return 1"})
        await ok(s, "alc_run", {"code": "error('x')"})
        r = await ok(s, "alc_advice", {"strategy": "cot", "task": "t", "script": [{"default": "ANSWER: 1"}]})
        assert r["status"] == "completed"
        st = await ok(s, "alc_stats", {})
        assert st["total_sessions"] == 4, st
        assert st["strategies"]["unknown"]["count"] == 3
        assert st["strategies"]["cot"]["count"] == 1
        assert st["strategies"]["cot"]["avg_llm_calls"] == 1
        assert st["by_status"] == {"completed": 3, "failed": 1, "cancelled": 0}
        only = await ok(s, "alc_stats", {"strategy": "cot", "days": 1})
        assert only["total_sessions"] == 1 and list(only["strategies"]) == ["cot"]


async def test_reads_right_after_a_run_see_its_end():
    # Transcript writes are queued; reads wait for them (and for ends a recorder has not seen yet).
    async with connect() as s:
        for i in range(5):
            assert (await ok(s, "alc_run", {"code": f"return {i}"}))["status"] == "completed"
            st = await ok(s, "alc_stats", {})
            assert st["total_sessions"] == i + 1 and st["by_status"]["completed"] == i + 1, st
        listed = await ok(s, "alc_log_view", {})
        assert [x["status"] for x in listed["sessions"]] == ["completed"] * 5
