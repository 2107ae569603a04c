"""Package resolution for alc_advice and the package tools (interfaces.md §2.5, §2.11, §6)."""

from __future__ import annotations

import os
import pathlib
import tempfile

import pytest

from conftest import connect, err, ok

pytestmark = pytest.mark.anyio

ANSWER = [{"default": "Step 1: multiply.\nANSWER: 391"}]


def write_pkg(root: pathlib.Path, dirname: str, meta_name: str | None = None, answer: str = "pong") -> pathlib.Path:
    d = root / dirname
    d.mkdir(parents=True, exist_ok=True)
    (d / "init.lua").write_text(
        "local M = {}\n"
        f"M.meta = {{ name = \"{meta_name or dirname}\", version = \"1.2.3\", description = \"test pkg\" }}\n"
        "function M.run(ctx)\n"
        f"  ctx.result = \"{answer}:\" .. tostring(ctx.task)\n"
        "  return ctx\n"
        "end\n"
        "return M\n"
    )
    return d


def names(listing: dict) -> list[str]:
    return sorted(p["name"] for p in listing["packages"])


async def test_advice_bundled_before_init_and_did_you_mean():
    async with connect() as s:
        home = pathlib.Path((await ok(s, "alc_info"))["home"]["path"])
        assert not (home / "packages" / "cot").exists()
        r = await ok(s, "alc_advice", {"strategy": "cot", "task": "What is 17 * 23?", "script": ANSWER})
        assert r["status"] == "completed", r
        assert r["result"]["result"]["answer"] == "391"
        # host answerer: the bundled strategy pauses with its prompt
        p = await ok(s, "alc_advice", {"strategy": "cot", "task": "What is 17 * 23?"})
        assert p["status"] == "needs_response" and "17 * 23" in p["prompt"]
        lst = await ok(s, "alc_sessions", {"kind": "advice"})
        assert {x["strategy"] for x in lst["sessions"]} == {"cot"}
        e = await err(s, "alc_advice", {"strategy": "cott"})
        assert e["code"] == "package_not_found"
        assert "did you mean 'cot'" in e["error"]
        e = await err(s, "alc_advice", {"strategy": "zzzzzzzzzzzz"})
        assert e["code"] == "package_not_found" and "did you mean" not in e["error"]
        info = await ok(s, "alc_info")
        assert "cot" in info["bundled_packages"]
        assert [p["source"] for p in info["search_paths"]][-2:] == ["default", "bundled"]


async def test_advice_with_project_path_dependency():
    with tempfile.TemporaryDirectory() as proj:
        root = pathlib.Path(proj)
        write_pkg(root / "packages", "helpers", answer="proj")
        (root / "alc.toml").write_text('[packages]\nhelpers = { path = "packages/helpers" }\n')
        async with connect() as s:
            e = await err(s, "alc_advice", {"strategy": "helpers", "task": "t"})
            assert e["code"] == "package_not_found"
            r = await ok(s, "alc_advice", {"strategy": "helpers", "task": "t", "project_root": proj})
            assert r["status"] == "completed", r
            assert r["result"]["result"] == "proj:t"
            e = await err(s, "alc_advice", {"strategy": "helpers", "project_root": "/nonexistent/dir"})
            assert e["code"] == "invalid_params"


async def test_install_list_advice_remove():
    with tempfile.TemporaryDirectory() as src:
        single = write_pkg(pathlib.Path(src), "single_src", meta_name="alpha")
        coll = pathlib.Path(src) / "coll"
        write_pkg(coll, "beta")
        write_pkg(coll, "gamma")
        (coll / "not_a_pkg").mkdir()
        async with connect() as s:
            r = await ok(s, "alc_pkg_install", {"url": str(single)})
            assert r["mode"] == "local_single" and r["installed"] == ["alpha"], r
            r = await ok(s, "alc_pkg_install", {"url": str(coll)})
            assert r["mode"] == "local_collection" and sorted(r["installed"]) == ["beta", "gamma"], r
            r = await ok(s, "alc_pkg_install", {"url": str(single)})
            assert r["skipped"] == ["alpha"] and r["installed"] == []
            r = await ok(s, "alc_pkg_install", {"url": str(single), "force": True})
            assert r["updated"] == ["alpha"]
            lst = await ok(s, "alc_pkg_list", {"filter": {"scope": "global"}, "limit": 0})
            assert names(lst) == ["alpha", "beta", "gamma"], lst
            entry = next(p for p in lst["packages"] if p["name"] == "alpha")
            assert entry["version"] == "1.2.3" and entry["active"] is True
            full = await ok(s, "alc_pkg_list", {"verbose": "full", "filter": {"name": "alpha"}})
            assert full["packages"][0]["linked"] is False
            r = await ok(s, "alc_advice", {"strategy": "alpha", "task": "x"})
            assert r["status"] == "completed" and r["result"]["result"] == "pong:x"
            r = await ok(s, "alc_pkg_remove", {"name": "alpha"})
            assert r["removed"] == "alpha" and r["scope"] == "global" and r["files_removed"] is True
            e = await err(s, "alc_advice", {"strategy": "alpha"})
            assert e["code"] == "package_not_found"
            e = await err(s, "alc_pkg_remove", {"name": "alpha"})
            assert e["code"] == "package_not_found"
            e = await err(s, "alc_pkg_remove", {"name": "../evil"})
            assert e["code"] == "invalid_params"
            e = await err(s, "alc_pkg_install", {"url": "-oops"})
            assert e["code"] == "invalid_params"
            e = await err(s, "alc_pkg_install", {"url": str(coll / "not_a_pkg")})
            assert e["code"] == "package_not_found"
            e = await err(s, "alc_pkg_install", {})
            assert e["code"] == "invalid_params"


async def test_link_and_unlink():
    with tempfile.TemporaryDirectory() as src, tempfile.TemporaryDirectory() as proj:
        dev = write_pkg(pathlib.Path(src), "devpkg", answer="dev")
        async with connect() as s:
            r = await ok(s, "alc_pkg_link", {"path": str(dev)})
            assert r["linked"] == ["devpkg"] and r["mode"] == "single" and r["scope"] == "global", r
            lst = await ok(s, "alc_pkg_list", {"verbose": "full", "filter": {"name": "devpkg"}})
            assert lst["packages"][0]["linked"] is True
            r = await ok(s, "alc_advice", {"strategy": "devpkg", "task": "y"})
            assert r["result"]["result"] == "dev:y"
            r = await ok(s, "alc_pkg_unlink", {"name": "devpkg"})
            assert r == {"unlinked": "devpkg", "scope": "global"}
            assert (dev / "init.lua").is_file(), "the link target stays"
            e = await err(s, "alc_pkg_unlink", {"name": "devpkg"})
            assert e["code"] == "package_not_found"
            # variant link in a project wins over the bundled package of the same name
            (pathlib.Path(proj) / "alc.toml").write_text("[packages]\n")
            variant = write_pkg(pathlib.Path(src), "cot", answer="variant")
            r = await ok(s, "alc_pkg_link", {"path": str(variant), "scope": "variant", "project_root": proj})
            assert r["scope"] == "variant"
            assert (pathlib.Path(proj) / "alc.local.toml").is_file()
            r = await ok(s, "alc_advice", {"strategy": "cot", "task": "z", "project_root": proj})
            assert r["result"]["result"] == "variant:z"
            r = await ok(s, "alc_pkg_unlink", {"name": "cot", "scope": "variant", "project_root": proj})
            assert r["unlinked"] == "cot"


async def test_alc_init_then_conflict():
    with tempfile.TemporaryDirectory() as proj:
        root = pathlib.Path(proj)
        (root / ".gitignore").write_text("target/\n")
        async with connect() as s:
            r = await ok(s, "alc_init", {"project_root": proj})
            assert r["created"] == str((root / "alc.toml").resolve())
            assert r["gitignore_updated"] is True
            lines = (root / ".gitignore").read_text().splitlines()
            assert "alc.local.toml" in lines and ".alc-install.lock" in lines and "target/" in lines
            e = await err(s, "alc_init", {"project_root": proj})
            assert e["code"] == "conflict"


async def test_alc_init_bundled_and_project_install():
    with tempfile.TemporaryDirectory() as proj, tempfile.TemporaryDirectory() as src:
        single = write_pkg(pathlib.Path(src), "projpkg")
        async with connect() as s:
            home = pathlib.Path((await ok(s, "alc_info"))["home"]["path"])
            r = await ok(s, "alc_init", {"project_root": proj, "bundled": True})
            assert "cot" in r["bundled_installed"]
            assert (home / "packages" / "cot" / "init.lua").is_file()
            r = await ok(s, "alc_pkg_install", {"url": str(single), "scope": "project", "project_root": proj})
            assert r["project"]["alc_toml"].endswith("alc.toml")
            toml = (pathlib.Path(proj) / "alc.toml").read_text()
            assert "projpkg" in toml
            lock = (pathlib.Path(proj) / "alc.lock").read_text()
            assert "version = 1" in lock and "projpkg" in lock


async def test_package_tool_annotations():
    async with connect() as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert tools["alc_pkg_list"].annotations.read_only_hint is True
        for n in ("alc_pkg_install", "alc_pkg_remove", "alc_pkg_unlink"):
            assert tools[n].annotations.destructive_hint is True, n
        for n in ("alc_pkg_link", "alc_init"):
            assert tools[n].annotations.idempotent_hint is True, n
        assert tools["alc_pkg_install"].annotations.open_world_hint is True
        assert tools["alc_pkg_install"].input_schema["required"] == ["url"]
        assert tools["alc_pkg_list"].input_schema["properties"]["filter"]["type"] == "object"
