"""Resources and the `advice` prompt (interfaces.md §3.6, §3.7)."""

from __future__ import annotations

import json

import pytest
from mcp.shared.exceptions import MCPError

from conftest import connect, ok

pytestmark = pytest.mark.anyio


async def test_templates_and_package_resources():
    async with connect() as s:
        caps = s.init_result.capabilities
        assert caps.resources is not None and caps.prompts is not None
        templates = {t.uri_template for t in (await s.list_resource_templates()).resource_templates}
        assert {"alc://packages/{name}/init.lua", "alc://packages/{name}/meta",
                "alc://logs/{session_id}", "alc://sessions/{session_id}"} <= templates
        src = await s.read_resource("alc://packages/cot/init.lua")
        assert "M.meta" in src.contents[0].text and src.contents[0].mime_type == "text/x-lua"
        meta = json.loads((await s.read_resource("alc://packages/cot/meta")).contents[0].text)
        assert meta["name"] == "cot" and meta["version"]
        with pytest.raises(MCPError) as ei:
            await s.read_resource("alc://packages/no_such_pkg/init.lua")
        assert ei.value.error.code == -32002
        with pytest.raises(MCPError) as ei:
            await s.read_resource("alc://packages/../init.lua")
        assert ei.value.error.code == -32602


async def test_session_and_log_resources():
    async with connect() as s:
        p = await ok(s, "alc_run", {"code": 'return alc.llm("hello resource")'})
        sid = p["session_id"]
        snap = json.loads((await s.read_resource(f"alc://sessions/{sid}")).contents[0].text)
        assert snap["phase"] == "paused" and snap["pending"][0]["prompt"] == "hello resource"
        log = json.loads((await s.read_resource(f"alc://logs/{sid}?max_chars=100")).contents[0].text)
        assert log["session_id"] == sid and log["transcript"][0]["prompt"] == "hello resource"
        with pytest.raises(MCPError):
            await s.read_resource(f"alc://logs/{sid}?bogus=1")


async def test_advice_prompt():
    async with connect() as s:
        prompts = (await s.list_prompts()).prompts
        assert [p.name for p in prompts] == ["advice"]
        assert prompts[0].arguments[0].name == "task" and prompts[0].arguments[0].required is True
        r = await s.get_prompt("advice", {"task": "What is 17 * 23?"})
        text = r.messages[0].content.text
        assert "alc_pkg_list" in text and "alc_advice" in text and "17 * 23" in text
        with pytest.raises(MCPError):
            await s.get_prompt("advice", {})


async def test_completion_by_prefix():
    from mcp.types import ResourceTemplateReference

    async with connect() as s:
        assert s.init_result.capabilities.completions is not None
        ref = ResourceTemplateReference(type="ref/resource", uri="alc://packages/{name}/init.lua")
        r = await s.complete(ref, {"name": "name", "value": "co"})
        assert "cot" in r.completion.values
        assert all(v.startswith("co") for v in r.completion.values)
        assert r.completion.total == len(r.completion.values) and r.completion.has_more is False
        p = await ok(s, "alc_run", {"code": 'return alc.llm("x")'})
        sref = ResourceTemplateReference(type="ref/resource", uri="alc://sessions/{session_id}")
        r = await s.complete(sref, {"name": "session_id", "value": p["session_id"][:10]})
        assert p["session_id"] in r.completion.values


async def test_types_resource_lists_and_reads_the_alc_definitions():
    async with connect() as s:
        listed = {str(r.uri): r for r in (await s.list_resources()).resources}
        assert "alc://types/alc.d.lua" in listed
        assert listed["alc://types/alc.d.lua"].mime_type == "text/x-lua"
        body = (await s.read_resource("alc://types/alc.d.lua")).contents[0]
        assert body.text.startswith("---@meta")
        assert "function alc.llm(" in body.text
