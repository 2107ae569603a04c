"""`[log] transcripts` modes (interfaces.md §9.1): what `alc_log_view` shows once a
session has ended in `metadata` mode."""

from __future__ import annotations

import hashlib
import pathlib
import sqlite3
import tempfile

import pytest

from conftest import connect, ok

pytestmark = pytest.mark.anyio

PROMPT = "Name the capital of Freedonia, please."
SYSTEM = "You are a terse geographer."
ANSWER = "Fredville is the capital."


def digest(text: str) -> str:
    """First 16 bytes of SHA-256 as hex (the digest the transcript keeps)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


async def test_metadata_mode_keeps_sizes_and_digests_not_text():
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home:
        pathlib.Path(home, "config.toml").write_text('[log]\ntranscripts = "metadata"\n')
        async with connect(env={"ALC_HOME": home}) as s:
            code = f'print("a log line") return alc.llm("{PROMPT}", {{system = "{SYSTEM}"}})'
            p = await ok(s, "alc_run", {"code": code})
            sid = p["session_id"]
            # While the session is paused the text is still there (needed to answer it).
            d = await ok(s, "alc_log_view", {"session_id": sid})
            assert d["transcript"][0]["prompt"] == PROMPT
            r = await ok(s, "alc_continue", {"session_id": sid, "response": ANSWER})
            assert r["status"] == "completed" and r["result"] == ANSWER
            # Redacted in the transaction that ended the session: at once.
            d = await ok(s, "alc_log_view", {"session_id": sid})
            assert d["status"] == "completed" and d["transcript_mode"] == "metadata", d
            ex = d["transcript"][0]
            assert ex["prompt"] is None and ex["system"] is None and ex["response"] is None
            assert ex["prompt_chars"] == len(PROMPT.encode())
            assert ex["system_chars"] == len(SYSTEM.encode())
            assert ex["response_chars"] == len(ANSWER.encode())
            assert ex["prompt_digest"] == digest(PROMPT)
            assert ex["response_digest"] == digest(ANSWER)
            assert ex["answered_by"] == "host"
            # Logs stay in metadata mode (only `off` drops them).
            assert any("a log line" in l["message"] for l in d["logs"])
            text = str(d)
            assert "Freedonia" not in text and "Fredville" not in text
            meta = (await ok(s, "alc_log_view", {}))["sessions"][0]
            assert meta["session_id"] == sid and meta["task_hint"] is None
            assert meta["total_prompt_chars"] > 0
        # The transcript tables hold no prompt or response text either.
        db = sqlite3.connect(pathlib.Path(home, "alc.db"))
        rows = db.execute(
            "select prompt, system, response from transcript_exchanges where session_id = ?", (sid,)
        ).fetchall()
        assert rows == [(None, None, None)]
        # Nor do the journal's pause and answer records of the finished session (the
        # `spawned` record keeps the script, which is not a prompt).
        bodies = [b for (b,) in db.execute(
            "select body from records where session_id = ? and kind in ('pause', 'answer')", (sid,)
        )]
        assert len(bodies) == 2, bodies
        for b in bodies:
            assert "Freedonia" not in b and "Fredville" not in b and "geographer" not in b, b
            assert "[redacted: " in b, b
