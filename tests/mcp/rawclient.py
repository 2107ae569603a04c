"""A bare newline-delimited JSON-RPC client for `alc serve` (no Python SDK on the path),
shared by the benchmark scripts."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile

from conftest import alc_bin


class RawServer:
    """`alc serve` as a subprocess with its own home, initialized and ready for calls."""

    def __init__(self, client_name: str, binary: str | None = None) -> None:
        self.home = tempfile.mkdtemp(prefix="alc-raw-")
        self.proc = subprocess.Popen(
            [binary or alc_bin(), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env={**os.environ, "ALC_HOME": self.home}, bufsize=0)
        # Requests go out unbuffered; replies are read through a buffer (a bare pipe's
        # `readline` would read them one byte per system call).
        self.replies = io.BufferedReader(self.proc.stdout, 1 << 16)
        self.next_id = 0
        self.rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                "clientInfo": {"name": client_name, "version": "1"}})
        self.proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')

    def send(self, method: str, params: dict | None = None) -> int:
        """Sends one request without waiting; returns its id."""
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        return self.next_id

    def recv(self) -> dict:
        """The next response (notifications are skipped)."""
        while True:
            line = self.replies.readline()
            if not line:
                raise RuntimeError("server closed stdout")
            msg = json.loads(line)
            if "id" in msg:
                return msg

    def rpc(self, method: str, params: dict | None = None) -> dict:
        """Sends one request and returns its response (other messages are skipped)."""
        i = self.send(method, params)
        while True:
            r = self.recv()
            if r["id"] == i:
                return r

    def tool(self, name: str, args: dict) -> dict:
        """Calls a tool and returns its `structuredContent`."""
        return self.rpc("tools/call", {"name": name, "arguments": args})["result"]["structuredContent"]

    def close(self, timeout: float = 30) -> None:
        """Closes stdin, waits for the server to exit and removes its home."""
        self.proc.stdin.close()
        self.proc.wait(timeout=timeout)
        shutil.rmtree(self.home, ignore_errors=True)
