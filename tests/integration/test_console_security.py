"""Bad input and attacks on the console and the sharing rules, over real HTTP: CSRF, tampered and
expired sessions, another agency's ids, expired and revoked shares, and script injection (escaped in
every page and in the PDF)."""

from __future__ import annotations

import hashlib
import io
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pypdf import PdfReader
from sqlmodel import select

from custody.db import session_scope
from custody.models import Case, CaseShare, FootageRequest, Incident, WebSession
from devstack.procs import free_port
from tests.flow import wait_for
from tests.helpers import make_user
from tests.integration.conftest import Site
from tests.web import bearer, case_with_evidence, console_session, local_minutes, spot

pytestmark = pytest.mark.stack

XSS_TITLE = '<script>alert("t")</script><img src=x onerror=alert(1)>'
XSS_DESC = "</textarea><svg onload=alert(2)> & \"quotes\" 'single'"


@pytest.fixture(scope="module")
def evidence_case(web: Site):  # type: ignore[no-untyped-def]
    inv = make_user(web.engine, "investigator")
    case = case_with_evidence(web.url, web.settings, bearer(web.url, *inv))
    return inv, case


def test_forms_without_or_with_a_wrong_csrf_token_are_refused_and_change_nothing(web: Site) -> None:
    client, csrf = console_session(web.url, *make_user(web.engine, "investigator"))
    for token in (None, "forged-token", csrf[:-2] + "xx"):
        data = {"title": f"csrf {token}", "description": ""}
        if token is not None:
            data["csrf_token"] = token
        resp = client.post("/console/cases", data=data)
        assert resp.status_code == 403, resp.text
        assert "CSRF" in resp.text and "text/html" in resp.headers["content-type"]
    with session_scope(web.engine) as s:
        assert not s.exec(select(Case).where(Case.title.startswith("csrf "))).all()
    ok = client.post("/console/cases", data={"title": "csrf fine", "csrf_token": csrf})
    assert ok.status_code == 303
    # The login form is protected too (double-submit token).
    fresh = httpx.Client(base_url=web.url)
    resp = fresh.post("/login", data={"username": "x", "password": "y"})
    assert resp.status_code == 403


def test_tampered_expired_and_ended_sessions_go_back_to_sign_in(web: Site) -> None:
    client, _ = console_session(web.url, *make_user(web.engine, "investigator"))
    cookie = client.cookies["custody_session"]
    assert client.get("/console/cases").status_code == 200
    tampered = httpx.Client(base_url=web.url, cookies={"custody_session": cookie[:-3] + "abc"})
    resp = tampered.get("/console/cases")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=/console/cases")
    assert tampered.get("/console/cases/whatever/requests.json").status_code == 401  # JSON for scripts
    # Expired: the server's record of the session says so, whatever the cookie claims.
    with session_scope(web.engine) as s:
        row = s.get(WebSession, hashlib.sha256(cookie.encode()).hexdigest())
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        s.add(row)
    resp = client.get("/console/cases")
    assert resp.status_code == 303 and "/login" in resp.headers["location"]
    # Sign-out ends the session on the server: the old cookie is useless afterwards.
    client2, csrf2 = console_session(web.url, *make_user(web.engine, "investigator"))
    old = client2.cookies["custody_session"]
    assert client2.post("/logout", data={"csrf_token": csrf2}).status_code == 303
    replay = httpx.Client(base_url=web.url, cookies={"custody_session": old})
    assert replay.get("/console/cases").status_code == 303
    # The cookie is HttpOnly and SameSite.
    login = httpx.Client(base_url=web.url)
    form = login.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    user, password = make_user(web.engine, "auditor")
    resp = login.post("/login", data={"username": user, "password": password, "csrf_token": token})
    set_cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie


def test_another_agency_gets_404_for_every_route_of_a_case(web: Site, evidence_case) -> None:  # type: ignore[no-untyped-def]
    _, case = evidence_case
    other = make_user(web.engine, "prosecutor", "USPP")
    api = bearer(web.url, *other)
    for path in (
        f"/cases/{case.case_id}",
        f"/cases/{case.case_id}/requests",
        f"/cases/{case.case_id}/evidence",
        f"/requests/{case.request_id}",
        f"/evidence/{case.evidence_id}",
        f"/evidence/{case.evidence_id}/download",
        f"/cases/{case.case_id}/custody-report.pdf",
        f"/cases/{case.case_id}/custody-bundle.json",
    ):
        resp = api.get(path)
        assert resp.status_code == 404, (path, resp.status_code)
        assert case.case_id not in resp.text or "No case" in resp.text
    client, csrf = console_session(web.url, *other)
    for path in (
        f"/console/cases/{case.case_id}",
        f"/console/cases/{case.case_id}/requests.json",
        f"/console/requests/{case.request_id}",
        f"/console/evidence/{case.evidence_id}/download",
        f"/console/cases/{case.case_id}/custody-report.pdf",
        f"/console/cases/{case.case_id}/custody-bundle.json",
    ):
        assert client.get(path).status_code == 404, path
    for path in (f"/console/cases/{case.case_id}/alerts", f"/console/cases/{case.case_id}/shares"):
        assert client.post(path, data={"csrf_token": csrf}).status_code in (403, 404), path
    assert api.post(f"/requests/{case.request_id}/cancel").status_code in (403, 404)


def test_expired_and_revoked_shares_give_404_and_a_share_is_read_only(web: Site, evidence_case) -> None:  # type: ignore[no-untyped-def]
    inv, case = evidence_case
    owner = bearer(web.url, *inv)
    partner_user = make_user(web.engine, "investigator", "MTPD")
    partner = bearer(web.url, *partner_user)
    assert partner.get(f"/cases/{case.case_id}").status_code == 404
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    share = owner.post(f"/cases/{case.case_id}/shares", json={"agency": "MTPD", "expires_at": soon})
    assert share.status_code == 201, share.text
    assert partner.get(f"/cases/{case.case_id}").status_code == 200
    assert partner.get(f"/evidence/{case.evidence_id}/download").status_code == 200
    # Read-only: no alerts, no cancels, no re-sharing.
    alert = partner.post(
        f"/cases/{case.case_id}/alerts",
        json={
            "lat": 1,
            "lon": 1,
            "radius_m": 10,
            "description": "x",
            "window_start": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "window_end": datetime.now(UTC).isoformat(),
        },
    )
    assert alert.status_code == 403, alert.text
    assert (
        partner.post(f"/cases/{case.case_id}/shares", json={"agency": "FBI", "expires_at": soon}).status_code
        == 403
    )
    time.sleep(2.5)
    assert partner.get(f"/cases/{case.case_id}").status_code == 404  # expired
    assert case.case_id not in [c["id"] for c in partner.get("/cases").json()]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    again = owner.post(f"/cases/{case.case_id}/shares", json={"agency": "MTPD", "expires_at": later}).json()
    assert partner.get(f"/cases/{case.case_id}/evidence").status_code == 200
    revoked = owner.post(f"/cases/{case.case_id}/shares/{again['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert owner.post(f"/cases/{case.case_id}/shares/{again['id']}/revoke").status_code == 409
    assert partner.get(f"/cases/{case.case_id}/evidence").status_code == 404
    assert partner.get(f"/evidence/{case.evidence_id}").status_code == 404
    # Bad share requests say why.
    for body, why in (
        ({"agency": "NOPE", "expires_at": later}, "Unknown agency"),
        ({"agency": "MPD", "expires_at": later}, "already sees"),
        ({"agency": "FBI", "expires_at": "2020-01-01T00:00:00Z"}, "past"),
        ({"agency": "FBI", "expires_at": "2099-01-01T00:00:00Z"}, "at most"),
        ({"agency": "FBI", "expires_at": later, "username": partner_user[0]}, "No user"),
    ):
        resp = owner.post(f"/cases/{case.case_id}/shares", json=body)
        assert resp.status_code == 422 and why in resp.json()["error"]["message"], (body, resp.text)
    with session_scope(web.engine) as s:
        states = [
            r.revoked_at is not None
            for r in s.exec(select(CaseShare).where(CaseShare.case_id == case.case_id))
        ]
    assert sorted(states) == [False, True]


def test_script_in_titles_and_descriptions_is_escaped_in_pages_and_the_pdf(web: Site) -> None:
    inv = make_user(web.engine, "investigator")
    client, csrf = console_session(web.url, *inv)
    resp = client.post(
        "/console/cases", data={"title": XSS_TITLE, "description": XSS_DESC, "csrf_token": csrf}
    )
    assert resp.status_code == 303
    case_id = resp.headers["location"].split("/")[3].split("?")[0]
    for path in ("/console/cases", f"/console/cases/{case_id}"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html
        assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in html
    page = client.get(f"/console/cases/{case_id}")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    pdf = client.get(f"/console/cases/{case_id}/custody-report.pdf")
    assert pdf.status_code == 200
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert '<script>alert("t")</script>' in text.replace("\n", "")
    api = bearer(web.url, *inv)
    assert api.get(f"/cases/{case_id}").json()["title"] == XSS_TITLE  # stored as typed, escaped when shown
    # Camera labels and owner names come from the public: escaped in the admin's registry too.
    owner = api.post("/owners", json={"name": "<i>Eve</i>", "email": f"eve-{case_id[:8]}@example.org"}).json()
    api.post(
        "/cameras",
        json={"owner_id": owner["id"], "label": XSS_TITLE, "lat": 1.5, "lon": 1.5, "kind": "registered"},
    )
    admin, _ = console_session(web.url, *make_user(web.engine, "admin"))
    html = admin.get("/console/admin/cameras", params={"q": "Eve"}).text
    assert "&lt;i&gt;Eve&lt;/i&gt;" in html and "<i>Eve</i>" not in html and "<script>alert" not in html


def test_login_form_errors_are_pages_not_json(web: Site) -> None:
    client = httpx.Client(base_url=web.url)
    form = client.get("/login?next=//evil.example/x")
    assert 'name="next" value="/console"' in form.text  # no open redirect
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    resp = client.post("/login", data={"username": "nobody", "password": "wrong", "csrf_token": token})
    assert resp.status_code == 401 and "Wrong username or password" in resp.text
    assert client.get("/console/no-such-page", follow_redirects=False).status_code in (303, 404)


def test_a_share_with_one_user_opens_the_case_to_that_user_only(web: Site, evidence_case) -> None:  # type: ignore[no-untyped-def]
    inv, case = evidence_case
    chosen, colleague = (
        make_user(web.engine, "prosecutor", "USCP"),
        make_user(web.engine, "prosecutor", "USCP"),
    )
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    resp = bearer(web.url, *inv).post(
        f"/cases/{case.case_id}/shares", json={"agency": "USCP", "username": chosen[0], "expires_at": later}
    )
    assert resp.status_code == 201, resp.text
    assert bearer(web.url, *chosen).get(f"/cases/{case.case_id}/evidence").status_code == 200
    assert bearer(web.url, *colleague).get(f"/cases/{case.case_id}/evidence").status_code == 404
    client, _ = console_session(web.url, *colleague)
    assert client.get(f"/console/cases/{case.case_id}").status_code == 404
    assert case.case_id not in client.get("/console/cases").text


def test_alert_form_refuses_bad_input_with_a_reason_and_cancel_works_from_the_console(web: Site) -> None:
    user = make_user(web.engine, "investigator")
    api = bearer(web.url, *user)
    lat, lon = spot()
    owner = api.post(
        "/owners", json={"name": "Kim", "email": f"kim-{uuid.uuid4().hex[:8]}@example.org"}
    ).json()
    api.post(
        "/cameras",
        json={"owner_id": owner["id"], "label": "Gate", "lat": lat, "lon": lon, "kind": "registered"},
    )
    client, csrf = console_session(web.url, *user)
    made = client.post("/console/cases", data={"title": "Console cancel", "csrf_token": csrf})
    case_id = made.headers["location"].split("/")[3].split("?")[0]
    end = datetime.now(UTC) - timedelta(minutes=2)
    tz = web.settings.tz
    form = {
        "lat": f"{lat}",
        "lon": f"{lon}",
        "radius_m": "40",
        "window_start": local_minutes(end - timedelta(minutes=20), tz),
        "window_end": local_minutes(end, tz),
        "description": "x",
        "csrf_token": csrf,
    }
    for change, why in (
        ({"radius_m": "5000"}, "above the program"),
        ({"window_end": local_minutes(datetime.now(UTC) + timedelta(hours=2), tz)}, "in the future"),
        ({"lat": "north"}, "not a number"),
        ({"window_start": local_minutes(end + timedelta(minutes=1), tz)}, "must be before its end"),
        # The hour skipped when clocks move forward in spring never happened.
        ({"window_start": "2026-03-08T02:30"}, "did not happen"),
    ):
        resp = client.post(f"/console/cases/{case_id}/alerts", data={**form, **change})
        assert resp.status_code == 422 and why in resp.text, (change, resp.status_code)
        assert 'value="' + change[next(iter(change))] + '"' in resp.text  # what was typed is kept
    with session_scope(web.engine) as s:
        assert not s.exec(select(Incident).where(Incident.case_id == case_id)).all()
    sent = client.post(f"/console/cases/{case_id}/alerts", data=form)
    assert sent.status_code == 303 and "notice=alert-1" in sent.headers["location"]
    with session_scope(web.engine) as s:
        (req,) = s.exec(select(FootageRequest).where(FootageRequest.case_id == case_id)).all()
    wait_for("notified", lambda: api.get(f"/requests/{req.id}").json()["status"] == "notified")
    page = client.get(f"/console/requests/{req.id}")
    assert "Cancel this request…" in page.text and 'name="reason"' not in page.text  # asks first
    confirm = client.get(f"/console/requests/{req.id}?confirm=cancel")
    assert "Cancel this request?" in confirm.text and 'name="reason"' in confirm.text
    assert client.post(f"/console/requests/{req.id}/cancel", data={}).status_code == 403
    done = client.post(
        f"/console/requests/{req.id}/cancel", data={"csrf_token": csrf, "reason": "wrong camera"}
    )
    assert done.status_code == 303
    got = api.get(f"/requests/{req.id}").json()
    assert got["status"] == "cancelled" and "wrong camera" in got["history"][-1]["detail"]
    again = client.post(f"/console/requests/{req.id}/cancel", data={"csrf_token": csrf})
    assert again.status_code == 409 and "already ended" in again.text


def test_a_failed_pull_shows_its_reason_and_naive_times_are_refused(web: Site) -> None:
    user = make_user(web.engine, "investigator")
    api = bearer(web.url, *user)
    lat, lon = spot()
    owner = api.post("/owners", json={"name": "Lu", "email": f"lu-{uuid.uuid4().hex[:8]}@example.org"})
    refused = f"http://127.0.0.1:{free_port()}/feed"  # nothing listens: connection refused
    cam = api.post(
        "/cameras",
        json={
            "owner_id": owner.json()["id"],
            "label": "Dock",
            "lat": lat,
            "lon": lon,
            "kind": "integrated",
            "pull_url": refused,
        },
    )
    assert cam.status_code == 201, cam.text
    case_id = api.post("/cases", json={"title": "Dock break-in"}).json()["id"]
    naive = api.post(
        f"/cases/{case_id}/alerts",
        json={
            "lat": lat,
            "lon": lon,
            "radius_m": 40,
            "description": "x",
            "window_start": "2026-11-27T21:25:00",
            "window_end": "2026-11-27T21:55:00",
        },
    )
    assert naive.status_code == 422 and "offset" in naive.json()["error"]["message"], naive.text
    sent = api.post(
        f"/cases/{case_id}/alerts",
        json={
            "lat": lat,
            "lon": lon,
            "radius_m": 40,
            "description": "x",
            "window_start": "2026-11-27T21:25:00-08:00",
            "window_end": "2026-11-27T21:55:00-08:00",
        },
    )
    assert sent.status_code == 202, sent.text
    req_id = sent.json()["requests"][0]["id"]
    wait_for("failed", lambda: api.get(f"/requests/{req_id}").json()["status"] == "failed", timeout=60)
    client, _csrf = console_session(web.url, *user)
    page = client.get(f"/console/cases/{case_id}").text
    assert "pull failed after 2 tries: the recorder could not be reached (connection refused)" in page
    assert "Metropolitan Police Department (MPD)" in page
    assert "Fri 27 Nov 2026, 21:25-21:55 PST" in page


def test_the_repeated_autumn_hour_must_be_chosen_in_the_alert_form(web: Site) -> None:
    """01:30 on 1 Nov 2026 happened twice in Los Angeles (PDT, then PST): the form refuses to guess,
    keeps what was typed, offers the two, and the choice reaches the request as an instant."""
    user = make_user(web.engine, "investigator")
    client, csrf = console_session(web.url, *user)
    made = client.post("/console/cases", data={"title": "Night of the clock change", "csrf_token": csrf})
    case_id = made.headers["location"].split("/")[3].split("?")[0]
    form = {
        "lat": "10.5",
        "lon": "10.5",
        "radius_m": "40",
        "window_start": "2026-11-01T00:40",
        "window_end": "2026-11-01T01:30",
        "description": "x",
        "csrf_token": csrf,
    }
    first = client.post(f"/console/cases/{case_id}/alerts", data=form)
    assert first.status_code == 422 and "happened twice" in first.text, first.text[-2000:]
    assert "01:30 PDT (08:30 UTC) or 01:30 PST (09:30 UTC)" in first.text
    assert 'name="window_end_zone"' in first.text and 'value="2026-11-01T01:30"' in first.text
    sent = client.post(f"/console/cases/{case_id}/alerts", data={**form, "window_end_zone": "PST"})
    assert sent.status_code == 303, sent.text[-2000:]
    with session_scope(web.engine) as s:
        (incident,) = s.exec(select(Incident).where(Incident.case_id == case_id)).all()
        assert incident.window_start == datetime(2026, 11, 1, 7, 40, tzinfo=UTC)
        assert incident.window_end == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    page = client.get(f"/console/cases/{case_id}")
    assert "Sun 1 Nov 2026, 00:40 PDT - Sun 1 Nov 2026, 01:30 PST" in page.text


def test_behind_https_the_session_cookie_is_secure(web: Site) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    settings = web.settings.model_copy(update={"public_url": "https://custody.example.gov"})
    user, password = make_user(web.engine, "prosecutor")
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
        resp = client.post(
            "/login",
            data={"username": user, "password": password, "csrf_token": token},
            follow_redirects=False,
        )
        assert resp.status_code == 303
        cookie = resp.headers["set-cookie"].lower()
        assert "custody_session=" in cookie and "secure" in cookie and "httponly" in cookie
        assert "samesite=strict" in cookie
        assert client.get("/console/cases").status_code == 200


def test_an_agency_admin_manages_only_its_own_accounts(web: Site) -> None:
    """An FBI admin cannot make an MPD account (an MPD admin could then read every MPD case), disable
    one, see MPD's accounts or add agencies; a program administrator (MPD) can do all of that."""
    fbi_admin = make_user(web.engine, "admin", "FBI")
    mpd_user, _ = make_user(web.engine, "investigator", "MPD")
    client, csrf = console_session(web.url, *fbi_admin)

    def new_user(agency: str) -> httpx.Response:
        form = {
            "csrf_token": csrf,
            "username": f"u-{uuid.uuid4().hex[:8]}",
            "password": uuid.uuid4().hex,
            "role": "admin",
            "agency": agency,
            "full_name": "Made Here",
            "title": "",
        }
        return client.post("/console/admin/users", data=form)

    refused = new_user("MPD")
    assert refused.status_code == 403, refused.text
    assert "accounts only" in refused.text
    assert new_user("FBI").status_code == 303
    listing = client.get("/console/admin/users").text
    assert mpd_user not in listing
    with session_scope(web.engine) as session:
        from custody.models import User

        target = session.exec(select(User).where(User.username == mpd_user)).one()
        target_id = target.id
    off = client.post(
        f"/console/admin/users/{target_id}/active", data={"csrf_token": csrf, "active": "false"}
    )
    assert off.status_code == 403
    with session_scope(web.engine) as session:
        from custody.models import User

        assert session.get(User, target_id).active  # type: ignore[union-attr]
    agency = client.post("/console/admin/agencies", data={"csrf_token": csrf, "code": "XYZ", "name": "Xyz"})
    assert agency.status_code == 403
    program, _ = console_session(web.url, *make_user(web.engine, "admin", "MPD"))
    assert mpd_user in program.get("/console/admin/users").text
