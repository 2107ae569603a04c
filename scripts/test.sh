#!/usr/bin/env bash
# Runs every test: the Rust workspace, then the MCP end-to-end tests through the
# official Python `mcp` client (installed into .venv on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --bin alc
cargo test --workspace

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
ALC_BIN="${CARGO_TARGET_DIR:-target}/debug/alc" .venv/bin/python -m pytest -q tests/mcp
