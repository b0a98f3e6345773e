"""The console's files as the gateway serves them: every file of a known type, the index
at /console/ too, each with the console's security headers."""

from __future__ import annotations

from pathlib import Path

from ptctl import console


def make_console(folder: Path) -> Path:
    folder.mkdir()
    for name in ("index.html", "app.js", "console.css", "notes.txt", ".hidden.js"):
        (folder / name).write_text(name)
    return folder


def test_every_served_file_has_a_route_and_the_index_also_answers_the_folder(
    tmp_path: Path,
) -> None:
    listed = make_console(tmp_path / "here")
    routes = console.pages(listed, Path("/app/build/console"))
    assert {r["path"]: r["file"] for r in routes} == {
        "/console/app.js": "/app/build/console/app.js",
        "/console/console.css": "/app/build/console/console.css",
        "/console/index.html": "/app/build/console/index.html",
        "/console/": "/app/build/console/index.html",
    }
    types = {r["path"]: r["content_type"] for r in routes}
    assert types["/console/app.js"] == "text/javascript; charset=utf-8"
    assert types["/console/"] == "text/html; charset=utf-8"


def test_every_console_file_carries_a_policy_that_runs_only_its_own_scripts(
    tmp_path: Path,
) -> None:
    routes = console.pages(make_console(tmp_path / "here"), tmp_path)
    for route in routes:
        headers = route["headers"]
        assert isinstance(headers, dict)
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert headers["x-content-type-options"] == "nosniff"


def test_an_unbuilt_console_has_no_routes(tmp_path: Path) -> None:
    assert console.pages(tmp_path / "missing", tmp_path) == []


def test_the_copy_holds_the_served_files_only_and_nothing_left_from_before(
    tmp_path: Path,
) -> None:
    source = make_console(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "removed.js").write_text("old")
    console.copy(out, source)
    assert sorted(p.name for p in out.iterdir()) == ["app.js", "console.css", "index.html"]
