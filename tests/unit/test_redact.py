"""No secret in a log line: what custody.redact removes, that every route carrying a token in its
path is covered, and that no page template has inline script, styles or event handlers (the CSP
forbids them, so they would silently not work)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from custody.redact import REDACTED, TOKEN_PATHS, RedactSecrets, redact

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "6GFgi-5KR43F5ILc0ub33QNMzZyw1i69zc8G70oYbNQ"
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlLXZhbHVl"


def test_tokens_in_paths_queries_bearer_headers_and_jwts_are_redacted() -> None:
    cases = {
        f'"GET /consent/{TOKEN} HTTP/1.1" 200': f'"GET /consent/{REDACTED} HTTP/1.1" 200',
        f"PUT /consent/{TOKEN}/files/a.mp4": f"PUT /consent/{REDACTED}/files/a.mp4",
        f"http://x/resident/link/{TOKEN}?next=/": f"http://x/resident/link/{REDACTED}?next=/",
        "/health?token=abc&x=1&password=hunter22": f"/health?token={REDACTED}&x=1&password={REDACTED}",
        f"Authorization: Bearer {TOKEN}": f"Authorization: Bearer {REDACTED}",
        f"token was {JWT}.": f"token was {REDACTED}.",
    }
    for raw, clean in cases.items():
        assert redact(raw) == clean
    assert redact("GET /cases/123/evidence?limit=5") == "GET /cases/123/evidence?limit=5"


def test_the_filter_keeps_positional_arguments_for_the_access_formatter() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/consent/{TOKEN}", "1.1", 200), None,
    )  # fmt: skip
    assert RedactSecrets().filter(record)
    assert record.getMessage() == f'127.0.0.1:5 - "GET /consent/{REDACTED} HTTP/1.1" 200'
    try:
        raise ValueError(f"bad link /consent/{TOKEN}")
    except ValueError:
        import sys

        failed = logging.LogRecord("custody.api", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    RedactSecrets().filter(failed)
    assert TOKEN not in logging.Formatter().format(failed)


def test_every_route_with_a_token_in_its_path_is_redacted() -> None:
    found = []
    for module in sorted((ROOT / "api").rglob("*.py")):
        text = module.read_text()
        prefix = re.search(r"APIRouter\([^)]*prefix=\"([^\"]*)\"", text)
        for path in re.findall(r"@router\.\w+\(\s*\"([^\"]*\{token\}[^\"]*)\"", text):
            found.append((prefix.group(1) if prefix else "") + path)
    assert len(found) >= 5, found  # the consent link's routes and the resident's sign-in link
    for path in found:
        assert path.startswith(TOKEN_PATHS), f"{path} carries a token: add its prefix to custody.redact"


def test_no_template_or_docs_page_has_inline_script_styles_or_handlers() -> None:
    pages = sorted((ROOT / "api" / "templates").rglob("*.html"))
    assert len(pages) > 10
    from api.openapi import REDOC_PAGE, SWAGGER_PAGE

    texts = [(p.name, p.read_text()) for p in pages] + [("docs", SWAGGER_PAGE), ("redoc", REDOC_PAGE)]
    for name, text in texts:
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, f"{name}: inline script {tag}"
        assert not re.search(r"<style\b", text), f"{name}: inline <style>"
        assert not re.search(r"\sstyle\s*=", text), f"{name}: style= attribute"
        handler = re.search(r"<[^>]*\son[a-z]+\s*=", text)
        assert handler is None, f"{name}: inline event handler {handler.group(0) if handler else ''}"
