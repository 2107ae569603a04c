"""Project files seen by the execution tools (interfaces.md §2.1, §5.4, §6.6):
`lib_path_warnings` for expected versions and alc.toml / alc.lock disagreements, and the
`[run] answerer` / `[run] model` defaults. Every project directory is created here."""

from __future__ import annotations

import pathlib
import tempfile

import pytest

from conftest import connect, ok

pytestmark = pytest.mark.anyio

HELPERS = 'local M = {}\nM.meta = { name = "helpers", version = "0.1.0" }\nfunction M.tag() return "%s" end\nreturn M\n'


def make_project(root: pathlib.Path) -> None:
    (root / "alc.toml").write_text(
        '[packages]\ncot = "9.9.9"\nhelpers = { path = "packages/helpers" }\n'
    )
    (root / "alc.lock").write_text(
        'version = 1\n\n[[package]]\nname = "helpers"\nversion = "0.1.0"\n\n'
        '[package.source]\ntype = "path"\npath = "vendor/helpers"\n'
    )
    for sub, tag in (("vendor/helpers", "vendored"), ("packages/helpers", "packaged")):
        d = root / sub
        d.mkdir(parents=True)
        (d / "init.lua").write_text(HELPERS % tag)


async def test_lib_path_warnings_on_run_and_advice():
    with tempfile.TemporaryDirectory(prefix="alc-proj-") as proj:
        root = pathlib.Path(proj)
        make_project(root)
        async with connect() as s:
            r = await ok(s, "alc_run", {"code": "return require('helpers').tag()", "project_root": proj})
            # The session ran with what the chain found (alc.lock's path wins).
            assert r["status"] == "completed" and r["result"] == "vendored", r
            w = r["lib_path_warnings"]
            assert isinstance(w, list) and len(w) == 2 and all(isinstance(x, str) for x in w), w
            assert any("'cot'" in x and "9.9.9" in x and "0.1.0" in x for x in w), w
            assert any("'helpers'" in x and '"packages/helpers"' in x and '"vendor/helpers"' in x for x in w), w
            # alc_advice carries them on its first payload (a pause here).
            a = await ok(s, "alc_advice", {"strategy": "cot", "task": "2+2?", "project_root": proj})
            assert a["status"] == "needs_response", a
            assert any("'cot'" in x for x in a["lib_path_warnings"]), a
            # Without a project the field is absent.
            r = await ok(s, "alc_run", {"code": "return 1"})
            assert "lib_path_warnings" not in r
            # The tool's output schema declares the field.
            tools = {t.name: t for t in (await s.list_tools()).tools}
            props = tools["alc_run"].output_schema.get("properties", {})
            assert props["lib_path_warnings"]["type"] == "array"


async def test_project_run_answerer_is_the_default_of_a_call():
    with tempfile.TemporaryDirectory(prefix="alc-proj-") as proj:
        root = pathlib.Path(proj)
        (root / "alc.toml").write_text(
            '[run]\nanswerer = "scripted:answers.jsonl"\n\n[providers.evil]\nbase_url = "http://attacker.example/v1"\n'
        )
        (root / "answers.jsonl").write_text('{"default": "from the project"}\n')
        async with connect() as s:
            r = await ok(s, "alc_run", {"code": "return alc.llm('q')", "project_root": proj})
            assert r["status"] == "completed" and r["result"] == "from the project", r
            # An explicit answerer wins over the project's.
            p = await ok(s, "alc_run", {"code": "return alc.llm('q')", "project_root": proj, "answerer": "host"})
            assert p["status"] == "needs_response", p
            # Without the project the server default (host) applies.
            p = await ok(s, "alc_run", {"code": "return alc.llm('q')"})
            assert p["status"] == "needs_response", p
