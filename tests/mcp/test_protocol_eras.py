"""Protocol revisions of `alc serve` (interfaces.md §3.1, §3.3; acceptance §10 #1, #2).

A legacy client selects its revision with `initialize`; a 2026-07-28 client sends the
revision, its identity and its capabilities in every request's `_meta` and may probe
with `server/discover` first.
"""

from __future__ import annotations

import json
import re
import tempfile

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import ROOT, alc_bin, connect
from rawrpc import CLIENT_CAPABILITIES_KEY, RawServer, RpcError, body, modern_meta

pytestmark = pytest.mark.anyio

UNSUPPORTED_PROTOCOL_VERSION = -32022


def crate_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


# ---------------------------------------------------------------- §10 #1: initialize


async def test_initialize_with_the_python_client_negotiates_2025_11_25():
    async with connect() as s:
        init = s.init_result
        assert init.server_info.name == "algocline"
        assert init.server_info.version == crate_version()
        assert init.protocol_version == "2025-11-25"
        result = await s.call_tool("alc_run", {"code": "return 1"})
        # Legacy results keep the legacy shape: no `resultType`.
        assert "result_type" not in result.model_fields_set or result.result_type is None


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", "2025-03-26"])
def test_initialize_echoes_the_requested_legacy_version(version: str):
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home, RawServer(home) as srv:
        init = srv.initialize(version)
        assert init["protocolVersion"] == version
        assert init["serverInfo"] == {"name": "algocline", "version": crate_version()}
        tools = srv.request("tools/list", {})["tools"]
        result = srv.request("tools/call", {"name": "alc_run", "arguments": {"code": "return 2"}})
        assert "resultType" not in result
        if version == "2025-03-26":
            # 2025-03-26 predates structured output.
            assert all("outputSchema" not in t for t in tools)
            assert "structuredContent" not in result
        else:
            assert all("outputSchema" in t for t in tools)
            assert "structuredContent" in result
        assert body(result)["result"] == 2


def test_initialize_with_an_unknown_version_is_refused_with_the_supported_list():
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home, RawServer(home) as srv:
        with pytest.raises(RpcError) as e:
            srv.initialize("1999-01-01")
        assert e.value.code == -32602
        assert "protocol version" in e.value.message.lower()
        assert "2026-07-28" in e.value.data["supported"]
        assert "2025-11-25" in e.value.data["supported"]
        assert e.value.data["requested"] == "1999-01-01"


# ---------------------------------------------------------------- §10 #2: 2026-07-28


async def _tool_names_legacy() -> list[str]:
    async with connect() as s:
        return [t.name for t in (await s.list_tools()).tools]


async def test_modern_client_discovers_lists_tools_and_completes_a_round_trip():
    legacy_names = await _tool_names_legacy()
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home:
        params = StdioServerParameters(command=alc_bin(), args=["serve"], env={"ALC_HOME": home})
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                d = await s.discover()
                assert s.protocol_version == "2026-07-28"
                assert "2026-07-28" in d.supported_versions
                assert "2025-11-25" in d.supported_versions
                assert s.server_info is not None and s.server_info.name == "algocline"
                assert d.capabilities.tools is not None
                tools = (await s.list_tools()).tools
                assert [t.name for t in tools] == legacy_names
                assert all(t.output_schema is not None for t in tools)

                first = await s.call_tool("alc_run", {"code": "local a = alc.llm('2+2?') return a .. '!'"})
                assert first.result_type == "complete"
                pause = json.loads(first.content[0].text)
                assert pause == first.structured_content
                assert pause["status"] == "needs_response" and pause["query_id"] == "q-0"
                done = await s.call_tool(
                    "alc_continue",
                    {"session_id": pause["session_id"], "round": pause["round"], "response": "4"},
                )
                assert done.result_type == "complete"
                final = json.loads(done.content[0].text)
                assert final["status"] == "completed" and final["result"] == "4!"
                # An error result carries `resultType` too.
                bad = await s.call_tool("alc_continue", {"session_id": "s-nope"})
                assert bad.is_error and bad.result_type == "complete"


def test_modern_raw_requests_carry_result_type_and_alc_info_lists_versions():
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home, RawServer(home) as srv:
        d = srv.request("server/discover", {"_meta": modern_meta()})
        assert d["resultType"] == "complete"
        result = srv.modern_call("alc_info", {})
        assert result["resultType"] == "complete"
        assert body(result)["protocol_versions"] == ["2026-07-28", "2025-11-25"]
        # A modern request must carry its client capabilities.
        meta = modern_meta()
        del meta[CLIENT_CAPABILITIES_KEY]
        with pytest.raises(RpcError) as e:
            srv.request("tools/call", {"name": "alc_info", "arguments": {}, "_meta": meta})
        assert e.value.code == -32602


@pytest.mark.parametrize("method", ["server/discover", "tools/call"])
def test_unsupported_per_request_version_lists_the_supported_ones(method: str):
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home, RawServer(home) as srv:
        params: dict = {"_meta": modern_meta(version="2099-01-01")}
        if method == "tools/call":
            params.update({"name": "alc_info", "arguments": {}})
        with pytest.raises(RpcError) as e:
            srv.request(method, params)
        assert e.value.code == UNSUPPORTED_PROTOCOL_VERSION
        assert set(e.value.data["supported"]) >= {"2026-07-28", "2025-11-25"}
        assert e.value.data["requested"] == "2099-01-01"
        # The connection stays usable.
        assert srv.request("server/discover", {"_meta": modern_meta()})["supportedVersions"]
