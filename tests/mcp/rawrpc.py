"""A minimal JSON-RPC client for `alc serve` over stdio (newline-delimited JSON).

Used where the `mcp` client cannot be made to send what a test needs: an
`initialize` naming an older or unknown protocol version, a `requestState` that was
tampered with, or a request without client capabilities. Everything runs against the
real binary through its pipes.
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import subprocess
import threading
import time
from typing import Any, Callable

from conftest import alc_bin

PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
MODERN = "2026-07-28"


def modern_meta(capabilities: dict | None = None, version: str = MODERN) -> dict:
    """The per-request `_meta` a 2026-07-28 client sends."""
    return {
        PROTOCOL_VERSION_KEY: version,
        CLIENT_INFO_KEY: {"name": "rawrpc", "version": "1"},
        CLIENT_CAPABILITIES_KEY: capabilities if capabilities is not None else {},
    }


class RpcError(Exception):
    """A JSON-RPC error response."""

    def __init__(self, error: dict) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")


class RawServer:
    """`alc serve` as a subprocess spoken to frame by frame.

    `on_request(method, params)` answers server-to-client requests (for example
    `sampling/createMessage`); its return value is sent as the result.
    """

    def __init__(
        self,
        home: str | os.PathLike[str],
        env: dict[str, str] | None = None,
        on_request: Callable[[str, dict], Any] | None = None,
    ) -> None:
        full_env = dict(os.environ)
        full_env["ALC_HOME"] = str(home)
        full_env.update(env or {})
        self._stderr = open(pathlib.Path(home) / "stderr.log", "w+")
        self.proc = subprocess.Popen(
            [alc_bin(), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=full_env,
        )
        self._frames: "queue.Queue[dict | None]" = queue.Queue()
        self._next_id = 1
        self.notifications: list[dict] = []
        self.on_request = on_request
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line:
                self._frames.put(json.loads(line))
        self._frames.put(None)

    def send(self, frame: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(frame) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        """Sends a request and returns its result; raises `RpcError` on an error response."""
        rid = self._next_id
        self._next_id += 1
        frame: dict = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            frame["params"] = params
        self.send(frame)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no response to {method}")
            msg = self._frames.get(timeout=left)
            if msg is None:
                raise EOFError(f"server closed the connection before answering {method}")
            if "method" in msg and "id" in msg:
                self._answer(msg)
            elif "method" in msg:
                self.notifications.append(msg)
            elif msg.get("id") == rid:
                if "error" in msg:
                    raise RpcError(msg["error"])
                return msg["result"]

    def _answer(self, msg: dict) -> None:
        if self.on_request is None:
            self.send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "not supported"}})
            return
        result = self.on_request(msg["method"], msg.get("params") or {})
        self.send({"jsonrpc": "2.0", "id": msg["id"], "result": result})

    def initialize(self, version: str, capabilities: dict | None = None) -> dict:
        """The legacy handshake: `initialize` then `notifications/initialized`."""
        result = self.request(
            "initialize",
            {
                "protocolVersion": version,
                "capabilities": capabilities or {},
                "clientInfo": {"name": "rawrpc", "version": "1"},
            },
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    def modern_call(self, name: str, arguments: dict, capabilities: dict | None = None, **extra: Any) -> dict:
        """A 2026-07-28 `tools/call` with per-request `_meta`."""
        params = {"name": name, "arguments": arguments, "_meta": modern_meta(capabilities)}
        params.update(extra)
        return self.request("tools/call", params)

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            self._stderr.close()

    def __enter__(self) -> "RawServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def body(result: dict) -> dict:
    """The JSON body of a raw tool result; checks text == structuredContent when present."""
    assert len(result["content"]) == 1, result
    parsed = json.loads(result["content"][0]["text"])
    if "structuredContent" in result:
        assert parsed == result["structuredContent"]
    return parsed
