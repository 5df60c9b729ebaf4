"""Residents on their own: sign-up with throttling and no account enumeration, single-use links,
nothing searchable before confirmation, cameras only their own, integrated cameras waiting for
approval, and leaving the program (cameras out of search, waiting requests cancelled)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from custody.db import session_scope
from custody.errors import Forbidden, TooManyRequests
from custody.models import CameraKind, Owner, OwnerToken, User
from custody.services import residents as res
from custody.services.cases import create_case
from custody.services.registry import approve_camera, search_cameras
from custody.services.requests import AlertLimits, create_alert
from tests.flow import messages_to, wait_for
from tests.helpers import make_user, unique_email
from tests.integration.conftest import Site
from tests.web import ask, bearer, resident_link_in, spot

pytestmark = pytest.mark.stack


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _sign_up(web: Site, client: httpx.Client, email: str, **extra: str) -> httpx.Response:
    form = client.get("/resident/signup")
    data = {
        "name": "Pat Neighbour",
        "email": email,
        "phone": "202-555-0199",
        "accept_terms": "yes",
        "csrf_token": _token(form.text),
        **extra,
    }
    return client.post("/resident/signup", data=data)


def _links(web: Site, email: str, count: int) -> list[str]:
    box = wait_for(
        f"{count} link(s)",
        lambda: (m := messages_to(web.settings.home / "mail", email)) and len(m) >= count and m,
    )
    return [resident_link_in(m) for m in box]


def _use(client: httpx.Client, link: str) -> httpx.Response:
    page = client.get(link)
    assert page.status_code == 200, page.text
    return client.post(link, data={"csrf_token": _token(page.text)})


def resident(web: Site, email: str | None = None) -> tuple[httpx.Client, str, str]:
    """A confirmed, signed-in resident: the client, its CSRF token and the email address."""
    email = email or unique_email()
    client = httpx.Client(base_url=web.url, timeout=30)
    assert _sign_up(web, client, email).status_code == 200
    assert _use(client, _links(web, email, 1)[-1]).status_code == 303
    home = client.get("/resident")
    assert home.status_code == 200
    return client, _token(home.text), email


def _add_camera(client: httpx.Client, csrf: str, lat: float, lon: float, **extra: str) -> httpx.Response:
    data = {
        "label": "Driveway",
        "lat": f"{lat}",
        "lon": f"{lon}",
        "view_description": "the driveway",
        "clock_offset_s": "-30",
        "kind": "registered",
        "csrf_token": csrf,
        **extra,
    }
    return client.post("/resident/cameras", data=data)


def test_sign_up_is_throttled_per_address_and_does_not_reveal_existing_accounts(web: Site) -> None:
    email = unique_email()
    client = httpx.Client(base_url=web.url, timeout=30)
    first = _sign_up(web, client, email)
    assert first.status_code == 200 and "Check your email" in first.text
    assert _use(client, _links(web, email, 1)[0]).status_code == 303
    again = _sign_up(web, httpx.Client(base_url=web.url), email)  # already registered: same answer
    assert again.status_code == 200 and "Check your email" in again.text
    second = _links(web, email, 2)[1]
    assert "/resident/link/" in second  # the owner gets a sign-in link, nobody else learns anything
    assert _sign_up(web, httpx.Client(base_url=web.url), email).status_code == 200
    blocked = _sign_up(web, httpx.Client(base_url=web.url), email)
    assert blocked.status_code == 429 and "wait" in blocked.text
    # Per client address, at the service (so this test's address is not blocked for the others).
    limits = res.Throttle(max_per_email=100, max_per_client=2, window_s=60)
    client_ip = f"203.0.113.{uuid.uuid4().int % 250}"
    with session_scope(web.engine) as s:
        res.throttle(session=s, email=unique_email(), client=client_ip, limits=limits)
        res.throttle(session=s, email=unique_email(), client=client_ip, limits=limits)
    with session_scope(web.engine) as s, pytest.raises(TooManyRequests):
        res.throttle(session=s, email=unique_email(), client=client_ip, limits=limits)


def test_links_work_once_and_expire_and_unconfirmed_accounts_register_nothing(web: Site) -> None:
    email = unique_email()
    client = httpx.Client(base_url=web.url, timeout=30)
    assert _sign_up(web, client, email).status_code == 200
    # Before confirming there is no session: the camera form sends the person to sign in.
    resp = client.post(
        "/resident/cameras", data={"label": "x", "lat": "1", "lon": "1"}, follow_redirects=False
    )
    assert resp.status_code == 303 and resp.headers["location"].startswith("/resident/signin")
    with session_scope(web.engine) as s:
        owner = s.exec(select(Owner).where(Owner.email == email)).one()
        assert owner.confirmed_at is None
        with pytest.raises(Forbidden):
            res.add_camera(
                session=s,
                owner=owner,
                form=res.CameraForm("x", 1, 1, "", None, "registered", None),
                pull_networks=[],
            )
    link = _links(web, email, 1)[0]
    assert _use(client, link).status_code == 303
    reused = client.post(link, data={"csrf_token": "whatever"})
    assert reused.status_code in (403, 410)
    stranger = httpx.Client(base_url=web.url)
    assert stranger.get(link).status_code == 410 and "already used" in stranger.get(link).text
    assert stranger.get("/resident/link/not-a-real-token").status_code == 403
    # An expired sign-in link.
    signin = stranger.get("/resident/signin")
    stranger.post("/resident/signin", data={"email": email, "csrf_token": _token(signin.text)})
    (late,) = [x for x in _links(web, email, 2) if x != link]  # mails within a second may come in any order
    with session_scope(web.engine) as s:
        for token in s.exec(select(OwnerToken).where(OwnerToken.used_at.is_(None))).all():  # type: ignore[union-attr]
            token.expires_at = datetime.now(UTC) - timedelta(seconds=1)
            s.add(token)
    page = stranger.get(late)
    assert page.status_code == 410 and "expired" in page.text


def test_resident_cameras_are_their_own_and_withdrawal_takes_them_out_at_once(web: Site) -> None:
    client, csrf, email = resident(web)
    lat, lon = spot()
    added = _add_camera(client, csrf, lat, lon)
    assert added.status_code == 303, added.text
    bad = _add_camera(client, csrf, 123, lon)
    assert bad.status_code == 422 and "lat must be between -90 and 90, got 123.0" in bad.text
    with session_scope(web.engine) as s:
        (hit,) = search_cameras(session=s, lat=lat, lon=lon, radius_m=50, max_radius_m=1000)
        camera_id = hit.id
    other, other_csrf, _ = resident(web)
    assert other.get(f"/resident/cameras/{camera_id}").status_code == 404
    assert (
        other.post(f"/resident/cameras/{camera_id}/remove", data={"csrf_token": other_csrf}).status_code
        == 404
    )
    edited = client.post(
        f"/resident/cameras/{camera_id}",
        data={
            "label": "Driveway (new)",
            "lat": f"{lat}",
            "lon": f"{lon}",
            "kind": "registered",
            "csrf_token": csrf,
        },
    )
    assert edited.status_code == 303

    # An investigator asks this camera; then the owner leaves the program.
    inv = bearer(web.url, *make_user(web.engine, "investigator"))
    _, req = ask(inv, lat, lon, title="Hit and run", radius_m=30)
    wait_for("notified", lambda: inv.get(f"/requests/{req}").json()["status"] == "notified")
    home = client.get("/resident")
    assert "Driveway (new)" in home.text and "notified" in home.text
    refused = client.post("/resident/withdraw", data={"csrf_token": csrf})
    assert refused.status_code == 422  # the box was not ticked: nothing changed
    left = client.post("/resident/withdraw", data={"csrf_token": csrf, "confirm": "yes"})
    assert left.status_code == 200 and "retention" in left.text
    with session_scope(web.engine) as s:
        assert search_cameras(session=s, lat=lat, lon=lon, radius_m=50, max_radius_m=1000) == []
    wait_for("cancelled", lambda: inv.get(f"/requests/{req}").json()["status"] == "cancelled")
    history = inv.get(f"/requests/{req}").json()["history"]
    assert history[-1]["detail"] == "the owner withdrew from the program"
    assert client.get("/resident", follow_redirects=False).status_code == 303  # the session ended
    # A withdrawn address gets no sign-in link, and the answer looks the same.
    before = len(messages_to(web.settings.home / "mail", email))
    signin = httpx.Client(base_url=web.url)
    page = signin.get("/resident/signin")
    resp = signin.post("/resident/signin", data={"email": email, "csrf_token": _token(page.text)})
    assert resp.status_code == 200 and "Check your email" in resp.text
    assert len(messages_to(web.settings.home / "mail", email)) == before


def test_integrated_cameras_need_a_business_and_approval_before_any_pull(web: Site) -> None:
    client, csrf, _ = resident(web)
    lat, lon = spot()
    pull = {"kind": "integrated", "pull_url": "http://127.0.0.1:9/export"}
    refused = _add_camera(client, csrf, lat, lon, **pull)
    assert refused.status_code == 422 and "business" in refused.text
    assert (
        client.post(
            "/resident/business", data={"business_name": "Corner Store", "csrf_token": csrf}
        ).status_code
        == 303
    )
    # Anybody may sign up: a recorder address inside the program's network (cloud metadata here) is
    # refused on the form, naming the setting that would allow it.
    metadata = _add_camera(client, csrf, lat, lon, kind="integrated", pull_url="http://169.254.169.254/")
    assert metadata.status_code == 422 and "CUSTODY_PULL_ALLOWED_NETWORKS" in metadata.text
    assert _add_camera(client, csrf, lat, lon, **pull).status_code == 303
    admin_id = make_user(web.engine, "admin")
    with session_scope(web.engine) as s:
        (hit,) = search_cameras(session=s, lat=lat, lon=lon, radius_m=50, max_radius_m=1000)
        assert hit.kind == CameraKind.integrated and not hit.approved
        user = s.exec(select(User).where(User.username == admin_id[0])).one()
        case = create_case(session=s, user=user, title="Shoplifting", description="")
        end = datetime.now(UTC) - timedelta(minutes=1)
        limits = AlertLimits(1000, 86400)
        _, asked = create_alert(
            session=s,
            user=user,
            case=case,
            lat=lat,
            lon=lon,
            radius_m=20,
            window_start=end - timedelta(minutes=5),
            window_end=end,
            description="",
            limits=limits,
        )
        assert [r.kind for r in asked] == ["registered"]  # not approved: the owner is asked
        approve_camera(session=s, user=user, camera_id=hit.id)
        _, pulled = create_alert(
            session=s,
            user=user,
            case=case,
            lat=lat,
            lon=lon,
            radius_m=20,
            window_start=end - timedelta(minutes=6),
            window_end=end,
            description="",
            limits=limits,
        )
        assert [r.kind for r in pulled] == ["integrated"]
        s.rollback()  # no workflows were started for these requests: leave nothing behind


def test_a_signed_in_owner_answers_an_open_request_from_their_page(web: Site) -> None:
    client, csrf, _ = resident(web)
    lat, lon = spot()
    assert _add_camera(client, csrf, lat, lon).status_code == 303
    inv = bearer(web.url, *make_user(web.engine, "investigator"))
    _, req = ask(inv, lat, lon, title="Bike theft", radius_m=30)
    wait_for("notified", lambda: inv.get(f"/requests/{req}").json()["status"] == "notified")
    home = client.get("/resident")
    assert f"/resident/requests/{req}/answer" in home.text
    other, other_csrf, _ = resident(web)
    assert other.post(f"/resident/requests/{req}/answer", data={"csrf_token": other_csrf}).status_code == 404
    assert client.post(f"/resident/requests/{req}/answer", data={}).status_code == 403  # CSRF
    opened = client.post(
        f"/resident/requests/{req}/answer", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert opened.status_code == 303 and opened.headers["location"].startswith("/consent/")
    link = opened.headers["location"]
    facts = client.get(link, headers={"Accept": "application/json"}).json()
    assert facts["request_id"] == req and facts["status"] == "notified"
    assert client.post(f"{link}/decision", json={"decision": "decline"}).json()["status"] == "declined"
    assert inv.get(f"/requests/{req}").json()["status"] == "declined"
    after = client.get("/resident")
    assert f"/resident/requests/{req}/answer" not in after.text and "declined" in after.text
    assert client.post(f"/resident/requests/{req}/answer", data={"csrf_token": csrf}).status_code == 410
