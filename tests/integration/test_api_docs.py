"""The API's documentation as its readers meet it: /docs and /redoc work with no third-party host,
and the OpenAPI document states the real error shape, statuses and content types."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Route, expect

from api.app import create_app
from tests.integration.conftest import Site, needs_chromium
from tests.web import DESKTOP, screenshot_dir

ERROR_REF = "#/components/schemas/Error"


def _matches_error_shape(body: Any) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(err, dict)
        and set(err) == {"code", "message"}
        and all(isinstance(v, str) and v for v in err.values())
    )


def test_every_operation_documents_the_real_error_shape(web: Site) -> None:
    with TestClient(create_app(web.settings)) as api:
        doc = api.get("/openapi.json").json()
        assert "HTTPValidationError" not in str(doc)
        assert doc["components"]["schemas"]["Error"]["required"] == ["error"]
        operations = [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]
        assert len(operations) >= 40
        for method, path, op in operations:
            errors = {s: r for s, r in op["responses"].items() if s.startswith(("4", "5"))}
            assert errors, f"{method} {path} documents no error"
            for status, response in errors.items():
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)
            if op.get("security"):
                assert {"401", "403"} <= set(errors), (method, path)
            if "{" in path:
                assert "404" in errors, (method, path)
        paths = doc["paths"]
        assert (
            "application/pdf"
            in paths["/cases/{case_id}/custody-report.pdf"]["get"]["responses"]["200"]["content"]
        )
        download = paths["/evidence/{evidence_id}/download"]["get"]["responses"]["200"]
        assert "X-Content-SHA256" in download["headers"]
        assert "text/plain" in paths["/ledger/checkpoint"]["get"]["responses"]["200"]["content"]
        assert {"413", "415", "410"} <= set(paths["/consent/{token}/files/{filename}"]["put"]["responses"])
        assert "429" in paths["/auth/token"]["post"]["responses"]
        # Real failures have the documented shape.
        for resp, status in (
            (api.get("/cases"), 401),
            (api.post("/auth/token", data={"username": "nobody", "password": "x"}), 401),
            (api.get("/consent/not-a-token", headers={"Accept": "application/json"}), 403),
            (api.post("/cases", content=b"{", headers={"content-type": "application/json"}), 400),
        ):
            assert resp.status_code == status and _matches_error_shape(resp.json()), resp.text


@needs_chromium
def test_docs_and_redoc_load_with_no_third_party_host(web: Site, chromium: Browser) -> None:
    page = chromium.new_page(viewport=DESKTOP)
    elsewhere: list[str] = []

    def only_here(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    refused: list[str] = []  # what the pages' Content-Security-Policy blocked: must be nothing
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{web.url}/docs")
    expect(page.get_by_text("/cases/{case_id}/custody-report.pdf").first).to_be_visible(timeout=20_000)
    # Swagger UI's own markup is not ours to fix (it has unnamed icon buttons): photographed only.
    folder = screenshot_dir(web.shots.parent) / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "swagger-ui.png"))
    page.goto(f"{web.url}/redoc")
    expect(page.get_by_text("custody-report.pdf").first).to_be_visible(timeout=20_000)
    page.screenshot(path=str(folder / "redoc.png"))
    assert elsewhere == [], f"the docs asked other hosts: {elsewhere}"
    assert refused == [], refused
    page.close()
