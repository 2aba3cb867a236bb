"""The browser apps over HTTP: pages by URL, their assets and modules, content types, 404s."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from web.pages import PAGES, STATIC_DIR

APP_URLS = ["/", "/auth", "/traveler", "/agency", "/system"]
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
# Module specifiers: `import x from './a.js'`, `export { y } from '../b.js'`, `import('./c.js')`.
IMPORTS = re.compile(
    r"""^\s*(?:import|export)\b[^'"();]*?\bfrom\s*['"]([^'"]+)['"]"""  # static, over several lines too
    r"""|^\s*import\s*['"]([^'"]+)['"]"""  # for its side effects
    r"""|\bimport\(\s*['"]([^'"]+)['"]\s*\)""",  # dynamic
    re.MULTILINE,
)
ASSET_REFS = re.compile(r"""(?:src|href)="(/static/[^"]+)\"""")


def static_files(suffix: str | None = None) -> list[Path]:
    return sorted(p for p in STATIC_DIR.rglob("*") if p.is_file() and (suffix is None or p.suffix == suffix))


def url_of(path: Path) -> str:
    return "/static/" + path.relative_to(STATIC_DIR).as_posix()


@pytest.mark.parametrize("url", APP_URLS)
async def test_each_app_url_answers_its_page(client: Any, url: str) -> None:
    resp = await client.get(url)
    body = await resp.text()
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert body.startswith("<!doctype html>")
    app = "public" if url == "/" else url.strip("/")
    assert f'<script type="module" src="/static/{app}/main.js"></script>' in body
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Request-ID"]


async def test_a_launch_url_serves_the_launch_page_whatever_the_slug(client: Any) -> None:
    for slug in ("falcon-x-moon-2027-03-01", "no-such-launch"):
        resp = await client.get(f"/launches/{slug}")
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
        assert '<script type="module" src="/static/public/launch.js"></script>' in await resp.text()


async def test_every_page_file_exists_and_every_asset_it_names_loads(client: Any) -> None:
    for name in PAGES.values():
        html = (STATIC_DIR / name).read_text()
        refs = ASSET_REFS.findall(html)
        assert refs, f"{name} loads no assets"
        for ref in refs:
            resp = await client.get(ref)
            assert resp.status == 200, f"{name} names {ref}, which answers {resp.status}"


async def test_every_static_file_loads_with_its_content_type(client: Any) -> None:
    files = static_files()
    assert len(files) > 20
    for path in files:
        resp = await client.get(url_of(path))
        assert resp.status == 200, url_of(path)
        expected = TYPES[path.suffix]
        assert resp.headers["Content-Type"].split(";")[0] == expected, url_of(path)
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert await resp.read() == path.read_bytes()


async def test_javascript_modules_are_served_as_javascript_in_utf8(client: Any) -> None:
    resp = await client.get("/static/common/api.js")
    assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
    head = await client.head("/static/common/ws.js")
    assert head.status == 200 and head.headers["Content-Type"] == "text/javascript; charset=utf-8"


async def test_every_module_import_resolves_to_a_file_that_loads(client: Any) -> None:
    modules = static_files(".js")
    seen = 0
    for path in modules:
        base = "http://app" + url_of(path)
        for spec in (next(g for g in m if g) for m in IMPORTS.findall(path.read_text())):
            assert spec.startswith("."), f"{url_of(path)} imports {spec!r}: relative modules only"
            target = urljoin(base, spec).removeprefix("http://app")
            resp = await client.get(target)
            assert resp.status == 200, f"{url_of(path)} imports {spec} ({target}): {resp.status}"
            assert resp.headers["Content-Type"].startswith("text/javascript")
            seen += 1
    assert seen > 30


def test_the_apps_load_nothing_from_another_origin() -> None:
    for path in static_files():
        if path.suffix not in (".js", ".html", ".css"):
            continue
        text = path.read_text()
        assert not re.search(r"https?://|//cdn|\bnpm\b", text), f"{url_of(path)} refers to another origin"


def test_every_system_view_is_a_module_of_its_own() -> None:
    shell = (STATIC_DIR / "system" / "main.js").read_text()
    views = re.findall(r"import\('\./views/([a-z_]+)\.js'\)", shell)
    expected = {"invoices", "agencies", "annual", "users", "logs", "queue", "mailbox", "sync", "metrics"}
    assert expected <= set(views)
    for view in views:
        assert (STATIC_DIR / "system" / "views" / f"{view}.js").is_file()


async def test_a_missing_asset_is_a_plain_404(client: Any) -> None:
    resp = await client.get("/static/common/nope.js")
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert await resp.read() == b""


async def test_paths_out_of_the_static_directory_are_not_served(client: Any) -> None:
    for path in ("/static/../pages.py", "/static/%2e%2e/pages.py", "/static/common/../../pages.py"):
        resp = await client.get(path)
        assert resp.status in (403, 404), path
        assert b"STATIC_DIR" not in await resp.read()
    resp = await client.get("/static/common/")
    assert resp.status in (403, 404)


async def test_api_404s_still_answer_the_json_error_body(client: Any) -> None:
    resp = await client.get("/api/booking/nope")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.get("/api/booking/launches/no-such-slug")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.post("/auth")
    assert resp.status == 405 and (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_a_mistyped_address_is_an_html_404_page_with_a_way_on(client: Any) -> None:
    resp = await client.get("/nonexistent-page/<script>")
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    text = await resp.text()
    assert "Page not found" in text and 'href="/"' in text
    assert "/nonexistent-page/&lt;script&gt;" in text and "<script>" not in text  # the path, escaped
    assert resp.headers["X-Request-ID"]
    head = await client.head("/nowhere")
    assert head.status == 404 and head.headers["Content-Type"].startswith("text/html")
    # Not a page: the API, the probes and a POST keep the JSON error body.
    for method, path in (("GET", "/api/nowhere"), ("GET", "/metricsx/../api/x"), ("POST", "/nowhere")):
        resp = await client.request(method, path)
        assert resp.status in (404, 405), path
        assert (await resp.json())["error"]["code"] in ("not_found", "method_not_allowed"), path
