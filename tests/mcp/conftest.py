"""Shared helpers for the MCP end-to-end tests of `alc serve`.

The binary is taken from `ALC_BIN`, else `target/debug/alc` at the repository root.
Every connection gets a fresh temporary `ALC_HOME`.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = pathlib.Path(__file__).resolve().parents[2]


def alc_bin() -> str:
    b = os.environ.get("ALC_BIN")
    if b:
        # Absolute, so that tests which start the binary from another directory find it.
        return os.path.abspath(b)
    return str(ROOT / "target" / "debug" / "alc")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def connect(env: dict[str, str] | None = None, args: list[str] | None = None) -> AsyncIterator[ClientSession]:
    """Starts `alc serve` with a temporary home and yields an initialized session."""
    with tempfile.TemporaryDirectory(prefix="alc-home-") as home:
        full_env = {"ALC_HOME": home}
        full_env.update(env or {})
        params = StdioServerParameters(command=alc_bin(), args=args if args is not None else ["serve"], env=full_env)
        errlog = open(os.path.join(home, "stderr.log"), "w+")
        try:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    session.init_result = await session.initialize()  # type: ignore[attr-defined]
                    session.stderr_path = errlog.name  # type: ignore[attr-defined]
                    yield session
        finally:
            errlog.close()


def payload(result: Any) -> dict:
    """The JSON body of a tool result; checks text == structuredContent."""
    assert len(result.content) == 1, result.content
    item = result.content[0]
    assert item.type == "text"
    body = json.loads(item.text)
    assert body == result.structured_content
    return body


async def call(session: ClientSession, name: str, args: dict | None = None, **kw: Any) -> tuple[dict, bool]:
    """Calls a tool; returns (body, is_error)."""
    result = await session.call_tool(name, args or {}, **kw)
    return payload(result), bool(result.is_error)


async def ok(session: ClientSession, name: str, args: dict | None = None, **kw: Any) -> dict:
    body, is_error = await call(session, name, args, **kw)
    assert not is_error, body
    return body


async def err(session: ClientSession, name: str, args: dict | None = None, **kw: Any) -> dict:
    body, is_error = await call(session, name, args, **kw)
    assert is_error, body
    assert body["status"] == "error"
    return body
