"""Rules of the console and of sharing that need no server: redirects, CSP, share states, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.headers import content_security_policy
from api.web.session import safe_next
from custody.models import CaseShare
from custody.services.cases import describe_share, share_state
from custody.settings import Settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/console/cases/1", "/console/cases/1"),
        ("//evil.example/x", "/console"),
        ("https://evil.example/", "/console"),
        ("/\\evil.example", "/console"),
        ("", "/console"),
        (None, "/console"),
    ],
)
def test_only_same_site_paths_are_followed_after_sign_in(value: str | None, expected: str) -> None:
    assert safe_next(value, "/console") == expected


def test_csp_allows_only_self_and_the_configured_tile_host() -> None:
    bare = content_security_policy("")
    assert "script-src 'self';" in bare and "img-src 'self' data:;" in bare
    assert "unsafe-inline" not in bare and "frame-ancestors 'none'" in bare
    osm = content_security_policy("https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://*.tile.example.org;" in osm
    own = content_security_policy("https://tiles.city.gov/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://tiles.city.gov;" in own


def _share(**kw: object) -> CaseShare:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "case_id": "c",
        "agency": "FBI",
        "created_by": "u",
        "expires_at": now + timedelta(hours=1),
    }
    values.update(kw)
    return CaseShare(**values)  # type: ignore[arg-type]


def test_a_share_is_active_until_it_expires_or_is_revoked() -> None:
    now = datetime.now(UTC)
    assert share_state(_share(), now) == "active"
    assert share_state(_share(expires_at=now - timedelta(seconds=1)), now) == "expired"
    assert share_state(_share(revoked_at=now), now) == "revoked"
    text = describe_share(_share(reason="federal charges"), "agent.k")
    assert "user agent.k of FBI" in text and "federal charges" in text and "until" in text
    assert "agency FBI" in describe_share(_share(), None)


def test_cookies_are_secure_when_the_public_url_is_https() -> None:
    assert not Settings(public_url="http://127.0.0.1:8000").secure_cookies
    assert Settings(public_url="https://custody.city.gov").secure_cookies
    assert not Settings(public_url="https://custody.city.gov", cookie_secure=False).secure_cookies


def test_map_centre_is_lat_comma_lon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTODY_MAP_CENTER", "40.7128,-74.0060")
    assert Settings().map_center == [40.7128, -74.006]
    monkeypatch.setenv("CUSTODY_MAP_CENTER", "north")
    with pytest.raises(ValueError, match="lat,lon"):
        Settings()
