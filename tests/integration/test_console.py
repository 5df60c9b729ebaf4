"""Each role's main story in the web console, in Debian's Chromium, through the real stack (API over
HTTP, Temporal worker, SeaweedFS, SMTP). Every page is photographed at desktop and phone width."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader
from sqlmodel import select

from custody import localtime
from custody.db import session_scope
from custody.geo import lat_cell
from custody.ledger.note import parse_verifier
from custody.ledger.verify import verify_export
from custody.models import Camera, CameraKind, Owner, User
from custody.services.registry import create_owner
from tests.flow import link_in, messages_to, plain_text, video_bytes, wait_for
from tests.helpers import make_user, unique_email
from tests.integration.conftest import Site, needs_chromium
from tests.web import (
    DESKTOP,
    bearer,
    case_with_evidence,
    ledger_types,
    local_minutes,
    resident_link_in,
    shot,
    sign_in,
    spot,
)

pytestmark = [needs_chromium, pytest.mark.stack]


def _page(browser: Browser) -> Page:
    return browser.new_context(viewport=DESKTOP, accept_downloads=True).new_page()


def test_resident_signs_up_registers_a_camera_and_the_investigator_gets_its_footage(
    web: Site, chromium: Browser, tmp_path: Path
) -> None:
    lat, lon = spot()
    email = unique_email()
    # --- the resident signs up on the public pages ---
    res = _page(chromium)
    res.goto(f"{web.url}/resident/signup")
    shot(res, web.shots, "resident-signup")
    res.get_by_label("Your name").fill("Robin Porch")
    res.get_by_label("Email").fill(email)
    res.get_by_label("Phone").fill("+1 202 555 0142")
    res.get_by_label("I have read and accept these terms").check()
    res.get_by_role("button", name="Sign up").click()
    expect(res.get_by_role("heading", name="Check your email")).to_be_visible()
    shot(res, web.shots, "resident-check-email")
    with session_scope(web.engine) as s:  # an unconfirmed account exists and has nothing searchable
        owner = s.exec(select(Owner).where(Owner.email == email)).first()
        assert owner is not None and owner.confirmed_at is None and owner.terms_version == "2026-11"
    link = resident_link_in(
        wait_for("the confirmation", lambda: messages_to(web.settings.home / "mail", email))[0]
    )
    res.goto(link)
    expect(res.get_by_role("heading", name="Confirm your email")).to_be_visible()
    shot(res, web.shots, "resident-confirm")
    res.get_by_role("button", name="Confirm my email").click()
    expect(res.get_by_text("You are signed in")).to_be_visible()
    res.get_by_role("link", name="Register a camera").click()
    # The pin: a tap on the map fills the coordinates; then the exact ones are typed.
    res.locator("#pin-map").click()
    expect(res.get_by_label("Latitude")).not_to_have_value("")
    shot(res, web.shots, "resident-camera-form")
    res.get_by_label("Latitude").fill(f"{lat:.6f}")
    res.get_by_label("Longitude").fill(f"{lon:.6f}")
    expect(res.locator("#pin-note")).to_contain_text("Pin moved to the typed coordinates")
    noted = re.findall(r"-?\d+\.\d+", res.locator("#pin-note").inner_text())
    assert abs(float(noted[0]) - lat) < 1e-4 and abs(float(noted[1]) - lon) < 1e-4, noted
    res.get_by_label("Label").fill("Front porch")
    res.get_by_label("What does it see?").fill("the porch and the sidewalk")
    res.get_by_label("Recorder clock offset").fill("90")
    res.get_by_role("button", name="Register camera").click()
    expect(res.get_by_text("Camera registered")).to_be_visible()
    expect(res.get_by_text("Front porch")).to_be_visible()
    shot(res, web.shots, "resident-home")

    # --- the investigator opens a case and sends an alert from the map form ---
    inv_user = make_user(web.engine, "investigator")
    inv = _page(chromium)
    sign_in(inv, web.url, *inv_user)
    shot(inv, web.shots, "investigator-cases-empty")
    inv.get_by_label("Title").fill("Porch robbery on Elm St")
    inv.get_by_label("Description").fill("Two people seen running north at 21:40.")
    inv.get_by_role("button", name="Open case").click()
    expect(inv.get_by_text("Case opened")).to_be_visible()
    case_id = inv.url.split("/console/cases/")[1].split("?")[0]
    end = datetime.now(UTC) - timedelta(minutes=2)
    inv.get_by_label("Latitude").fill(f"{lat + 0.0003:.6f}")
    inv.get_by_label("Longitude").fill(f"{lon:.6f}")
    inv.get_by_label("Longitude").dispatch_event("change")
    inv.get_by_label("Radius (metres)").fill("80")
    inv.get_by_label("Radius (metres)").dispatch_event("input")
    expect(inv.locator("#alert-preview")).to_contain_text("1 registered camera will be asked")
    tz = web.settings.tz  # America/Los_Angeles: not the default zone
    typed = (local_minutes(end - timedelta(minutes=30), tz), local_minutes(end, tz))
    inv.get_by_label("Footage from").fill(typed[0])
    inv.get_by_label("Footage until").fill(typed[1])
    # What every page, email and report must show: the typed local window, with its zone named.
    shown = localtime.window(localtime.parse_local(typed[0], tz), localtime.parse_local(typed[1], tz), tz)
    assert shown.endswith((" PST", " PDT")), shown
    inv.get_by_label("What happened").fill("robbery")
    shot(inv, web.shots, "investigator-alert-form")
    inv.get_by_role("button", name="Send alert").click()
    expect(inv.get_by_text("Alert sent: 1 camera asked")).to_be_visible()
    status = inv.locator("tr[data-request] [data-field=status]")
    expect(status).to_have_text("notified", timeout=30_000)  # live, without a reload

    # --- the owner answers through the real consent page ---
    notice = wait_for(
        "the notice",
        lambda: [m for m in messages_to(web.settings.home / "mail", email) if "/consent/" in str(m)],
    )
    assert shown in plain_text(notice[0]), plain_text(notice[0])
    clip = tmp_path / "porch.mp4"
    clip.write_bytes(video_bytes(1_500_000, seed=7))
    res.goto(link_in(notice[0]))
    expect(res.locator("#window")).to_have_text(shown)
    shot(res, web.shots, "owner-consent")
    res.get_by_role("button", name="Yes, I consent").click()
    expect(res.get_by_role("heading", name="Upload the video")).to_be_visible()
    res.locator("#files").set_input_files(str(clip))
    expect(res.get_by_text("Received. Fingerprint")).to_be_visible(timeout=30_000)
    res.get_by_role("button", name="I have sent every file").click()
    expect(res.get_by_role("heading", name="your footage was received")).to_be_visible()

    # --- the investigator sees it arrive live, downloads it, reads the history ---
    expect(status).to_have_text("attached", timeout=90_000)
    expect(inv.get_by_role("link", name="Download porch.mp4")).to_be_visible(timeout=10_000)
    expect(inv.locator("#evidence-table .basis")).to_contain_text("basis: owner's consent, ledger entry")
    shot(inv, web.shots, "investigator-case")
    with inv.expect_download() as dl:
        inv.get_by_role("link", name="Download porch.mp4").click()
    got = Path(dl.value.path()).read_bytes()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(clip.read_bytes()).hexdigest()
    inv.get_by_role("link", name="Front porch").click()
    expect(inv.get_by_role("heading", name="Footage request: Front porch")).to_be_visible()
    expect(inv.get_by_text("90 s off true time")).to_be_visible()
    expect(inv.locator("table .pill.attached")).to_be_visible()
    expect(inv.get_by_text(shown)).to_be_visible()
    shot(inv, web.shots, "investigator-request")
    report = inv.request.get(f"{web.url}/console/cases/{case_id}/custody-report.pdf")
    assert report.ok
    (web.shots / "investigator-report.pdf").write_bytes(report.body())
    pdf_text = " ".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(report.body())).pages).split())
    assert shown in pdf_text and "Front porch" in pdf_text

    bundle = inv.request.get(f"{web.url}/console/cases/{case_id}/custody-bundle.json")
    assert bundle.ok and bundle.json()["evidence"][0]["camera_clock_offset_s"] == 90

    # --- the resident sees the request and its outcome ---
    res.goto(f"{web.url}/resident")
    row = res.locator("#owner-requests tbody tr").first
    expect(row).to_contain_text("attached")
    expect(row).to_contain_text("1 file given")
    expect(row).to_contain_text(shown)
    shot(res, web.shots, "resident-home-with-request")


def test_prosecutor_downloads_the_custody_report_and_bundle(web: Site, chromium: Browser) -> None:
    inv = bearer(web.url, *make_user(web.engine, "investigator"))
    case = case_with_evidence(web.url, web.settings, inv, title="Armed robbery, 5th & K")
    page = _page(chromium)
    sign_in(page, web.url, *make_user(web.engine, "prosecutor"))
    shot(page, web.shots, "prosecutor-cases")
    page.get_by_role("link", name="Armed robbery, 5th & K").click()
    expect(page.get_by_text(case.sha256)).to_be_visible()
    expect(page.get_by_role("heading", name="Send an alert")).to_have_count(
        0
    )  # prosecutors do not send alerts
    shot(page, web.shots, "prosecutor-case")
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download report (PDF)").click()
    pdf = Path(dl.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert case.sha256[:32] in text and "Armed robbery, 5th & K" in text
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download bundle (JSON)").click()
    bundle = json.loads(Path(dl.value.path()).read_text())
    assert [e["sha256"] for e in bundle["evidence"]] == [case.sha256]
    types = [t for t, _ in ledger_types(web_ledger(web), case.case_id)]
    assert "report_generated" in types and "bundle_generated" in types


def web_ledger(web: Site):  # type: ignore[no-untyped-def]
    from custody.ledger.service import ledger_for

    return ledger_for(web.settings, web.engine)


def test_auditor_checks_consistency_searches_and_exports(
    web: Site, chromium: Browser, tmp_path: Path
) -> None:
    inv_user = make_user(web.engine, "investigator")
    inv = bearer(web.url, *inv_user)
    first = inv.post("/cases", json={"title": "Auditor first"}).json()["id"]
    ledger = web_ledger(web)
    case = case_with_evidence(web.url, web.settings, inv)
    earlier = ledger.sign_checkpoint()
    assert inv.get(f"/evidence/{case.evidence_id}").status_code == 200  # one more custody event
    later = ledger.sign_checkpoint()
    assert earlier is not None and later is not None and 0 < earlier.tree_size < later.tree_size
    logged = ledger.size()
    page = _page(chromium)
    sign_in(page, web.url, *make_user(web.engine, "auditor"))
    expect(page.get_by_role("heading", name="Latest signed checkpoint")).to_be_visible()
    size = int(page.locator("#latest-size").inner_text())
    # The page signs a checkpoint over everything logged so far (but its own checkpoint_signed entry).
    newest = ledger.latest_checkpoint()
    assert newest is not None and size == newest.tree_size and size >= logged - 1
    options = page.locator("#checkpoint-sizes option").evaluate_all("os => os.map(o => o.value)")
    assert {str(earlier.tree_size), str(later.tree_size)} <= set(options)
    page.get_by_label("Earlier tree size").fill(str(earlier.tree_size))
    page.get_by_label("Later tree size").fill(str(size))
    page.get_by_role("button", name="Check consistency").click()
    result = page.locator("#consistency-result")
    expect(result).to_contain_text("Consistent")
    expect(result).to_contain_text("RFC 9162")
    # Roots in hex, as `custody ledger verify` prints them; the proof's hashes shown and downloadable.
    latest_cp = ledger.checkpoint_at(size)
    assert latest_cp is not None
    root = base64.b64decode(latest_cp.note.split("\n")[2]).hex()
    expect(page.locator("#latest-root")).to_have_text(root)
    shown_hashes = page.locator("#proof-hashes li").all_inner_texts()
    proof = ledger.consistency_proof(earlier.tree_size, size)
    assert shown_hashes == [h.hex() for h in proof] and shown_hashes
    with page.expect_download() as dl:
        page.locator("#proof-download").click()
    downloaded = json.loads(Path(dl.value.path()).read_text())
    assert downloaded == {
        "first": earlier.tree_size,
        "second": size,
        "hashes": [base64.b64encode(h).decode() for h in proof],
    }
    shot(page, web.shots, "auditor-ledger")
    missing = next(i for i in range(1, size) if str(i) not in options)
    page.get_by_label("Earlier tree size").fill(str(missing))
    page.get_by_role("button", name="Check consistency").click()
    expect(result).to_contain_text("Not proven")
    expect(result).to_contain_text(f"No checkpoint was signed at tree size {missing}")
    page.get_by_role("link", name="Entries").click()
    page.get_by_label("Case id").fill(case.case_id)
    page.get_by_role("button", name="Search").click()
    entries = page.locator("#entries tbody tr")
    expect(entries.first).to_be_visible()
    kinds = entries.locator("td[data-label=Event]").all_inner_texts()
    assert {"request created", "consent given", "file verified", "evidence attached"} <= set(kinds)
    assert first not in page.content()
    # Who, by name: the investigator with role and agency; the owner only as the owner of a camera.
    who = " ".join(entries.locator("td[data-label=Who] summary").all_inner_texts())
    assert "Investigator " in who and "(investigator, MPD)" in who, who
    assert "owner of “Side gate”" in who and "Sam Owner" not in who, who
    with session_scope(web.engine) as s:
        inv_id = s.exec(select(User).where(User.username == inv_user[0])).one().id
    assert inv_id in page.content()  # the full id stays one click away
    shot(page, web.shots, "auditor-entries")
    page.get_by_role("link", name="Ledger", exact=True).click()
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download export (zip)").click()
    folder = tmp_path / "export"
    zipfile.ZipFile(dl.value.path()).extractall(folder)
    (exported,) = list(folder.iterdir())
    report = verify_export(exported, parse_verifier(ledger.verifier.encode()))
    assert report.tree_size >= size
    # The zip as downloaded is what `custody ledger verify` takes, no unpacking needed.
    archive = tmp_path / "custody-ledger.zip"
    archive.write_bytes(Path(dl.value.path()).read_bytes())
    cli = subprocess.run(
        [sys.executable, "-m", "cli.main", "ledger", "verify", str(archive), "--public-key",
         ledger.verifier.encode()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0 and "INTACT" in cli.stdout, cli.stdout + cli.stderr


def test_share_granted_used_and_revoked_and_another_agency_refused(web: Site, chromium: Browser) -> None:
    inv_user = make_user(web.engine, "investigator")
    case = case_with_evidence(
        web.url, web.settings, bearer(web.url, *inv_user), title="Metro platform assault"
    )
    fbi = make_user(web.engine, "prosecutor", "FBI")
    atf = make_user(web.engine, "investigator", "ATF")
    inv = _page(chromium)
    sign_in(inv, web.url, *inv_user)
    inv.goto(f"{web.url}/console/cases/{case.case_id}")
    inv.get_by_label("Agency", exact=True).select_option("FBI")
    inv.get_by_label("Only this user").fill(fbi[0])
    inv.get_by_label("Share until").fill(
        local_minutes(datetime.now(UTC) + timedelta(days=3), web.settings.tz)
    )
    inv.get_by_label("Reason").fill("federal charges")
    inv.get_by_role("button", name="Share read-only").click()
    expect(inv.get_by_text("Case shared")).to_be_visible()
    expect(inv.locator("li.share")).to_contain_text("active")

    partner = _page(chromium)
    sign_in(partner, web.url, *fbi)
    shared_row = partner.get_by_role("row").filter(has_text="Metro platform assault")
    expect(shared_row.get_by_text("shared with you", exact=True)).to_be_visible()
    partner.get_by_role("link", name="Metro platform assault").click()
    expect(partner.get_by_text("Shared with you read-only by MPD")).to_be_visible()
    shot(partner, web.shots, "partner-shared-case")
    with partner.expect_download() as dl:
        partner.get_by_role("link", name="Download report (PDF)").click()
    assert Path(dl.value.path()).read_bytes().startswith(b"%PDF")
    with partner.expect_download() as dl:
        partner.get_by_role("link", name=re.compile("Download gate.mp4")).click()
    assert hashlib.sha256(Path(dl.value.path()).read_bytes()).hexdigest() == case.sha256

    outsider = _page(chromium)
    sign_in(outsider, web.url, *atf)
    expect(outsider.get_by_text("Metro platform assault")).to_have_count(0)
    resp = outsider.goto(f"{web.url}/console/cases/{case.case_id}")
    assert resp is not None and resp.status == 404
    expect(outsider.get_by_role("heading", name="Not found")).to_be_visible()
    expect(outsider.get_by_role("button", name="Sign out")).to_be_visible()  # still their own console
    shot(outsider, web.shots, "outsider-not-found")

    inv.reload()
    shot(inv, web.shots, "investigator-sharing")
    inv.get_by_role("button", name="Revoke the share with FBI").click()
    expect(inv.get_by_text("Share revoked")).to_be_visible()
    resp = partner.goto(f"{web.url}/console/cases/{case.case_id}")
    assert resp is not None and resp.status == 404
    partner.goto(f"{web.url}/console/cases")
    expect(partner.get_by_text("Metro platform assault")).to_have_count(0)

    events = ledger_types(web_ledger(web), case.case_id)
    kinds = [t for t, _ in events]
    assert kinds.count("case_shared") == 1 and kinds.count("share_revoked") == 1
    via = [t for t, d in events if " via share " in d]
    assert {"case_viewed", "report_generated", "evidence_downloaded"} <= set(via)
    # The custody report shows the share's life.
    pdf = bearer(web.url, *inv_user).get(f"/cases/{case.case_id}/custody-report.pdf").content
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Access by other agencies" in text
    assert "case shared" in text and "share revoked" in text and "case viewed" in text


def test_admin_manages_users_agencies_and_approves_an_integrated_camera(web: Site, chromium: Browser) -> None:
    lat, lon = spot()
    with session_scope(web.engine) as s:
        owner = create_owner(
            session=s, name="Corner Deli LLC", email=unique_email(), phone=None, created_by=None
        )
        owner.business_name = "Corner Deli"
        cam = Camera(
            owner_id=owner.id,
            label=f"Deli door {uuid.uuid4().hex[:6]}",
            lat=lat,
            lon=lon,
            lat_cell=lat_cell(lat),
            kind=CameraKind.integrated,
            pull_url="http://127.0.0.1:9/feed",
        )
        s.add(cam)
        s.flush()
        label = cam.label
    page = _page(chromium)
    sign_in(page, web.url, *make_user(web.engine, "admin"))
    expect(page.get_by_role("heading", name="Staff users")).to_be_visible()
    name = f"det-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Full name").fill("Jordan Alvarez")
    page.get_by_label("Title").fill("Detective")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Role", exact=True).select_option("investigator")
    page.get_by_label("Agency").select_option("MTPD")
    page.get_by_label("Initial password").fill("correct horse battery")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_text("User created")).to_be_visible()
    expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
    expect(page.get_by_text("Jordan Alvarez")).to_be_visible()
    shot(page, web.shots, "admin-users")
    page.get_by_role("link", name="Agencies").click()
    code = f"P{uuid.uuid4().hex[:5].upper()}"
    page.get_by_label("Code").fill(code)
    page.get_by_label("Name").fill("Park Rangers")
    page.get_by_role("button", name="Add agency").click()
    expect(page.get_by_role("cell", name=code, exact=True)).to_be_visible()
    shot(page, web.shots, "admin-agencies")
    page.get_by_role("link", name="Cameras").click()
    page.get_by_label("Find by camera label").fill(label)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("awaiting approval")).to_be_visible()
    expect(page.get_by_text("http://127.0.0.1:9/feed")).to_be_visible()  # the address it will pull
    page.get_by_role("button", name=f"Test a pull from {label}").click()
    expect(page.locator("#probe-result")).to_contain_text("could not be reached (connection refused)")
    shot(page, web.shots, "admin-cameras")
    page.get_by_role("button", name=f"Approve pulls from {label}").click()
    expect(page.get_by_text("Camera approved")).to_be_visible()
    with session_scope(web.engine) as s:
        assert s.get(Camera, cam.id).approved_at is not None  # type: ignore[union-attr]
    with web.engine.connect() as conn:  # the owner's integration agreement, the basis of its pulls
        agreement = conn.execute(
            sa.text("SELECT entry FROM ledger_entries WHERE idempotency_key = :k"),
            {"k": f"camera:{cam.id}:agreement"},
        ).scalar_one()
    assert '"type":"camera_approved"' in agreement and '"kind":"integrated"' in agreement


def test_the_console_works_by_keyboard_alone(web: Site, chromium: Browser) -> None:
    """Sign in and open a case with the keyboard alone: the sign-in form has the focus, and on every
    other page the skip link comes first and leads to the content."""
    page = _page(chromium)
    username, password = make_user(web.engine, "investigator")
    page.goto(f"{web.url}/login")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("/console/cases"))
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    title = f"Keyboard case {uuid.uuid4().hex[:6]}"
    for _ in range(400):  # Tab through the content (every case listed) until the title field has it
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "title":
            break
    expect(page.get_by_label("Title")).to_be_focused()
    page.keyboard.type(title)
    page.keyboard.press("Tab")
    page.keyboard.type("typed without a mouse")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Open case")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    shot(page, web.shots, "keyboard-case")


def test_the_remaining_pages_fit_a_phone_too(web: Site, chromium: Browser) -> None:
    """The pages no story above photographs: sign-in pages, a camera's edit page, leaving the
    program, and the error pages."""
    page = _page(chromium)
    page.goto(f"{web.url}/login")
    shot(page, web.shots, "login")
    page.goto(f"{web.url}/resident/signin")
    shot(page, web.shots, "resident-signin")
    email = unique_email()
    page.goto(f"{web.url}/resident/signup")
    page.get_by_label("Your name").fill("Lee Corner")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Phone").fill("202-555-0123")
    page.get_by_label("Business name").fill("Corner Hardware")
    page.get_by_label("I have read and accept these terms").check()
    page.get_by_role("button", name="Sign up").click()
    page.goto(
        resident_link_in(wait_for("the link", lambda: messages_to(web.settings.home / "mail", email))[0])
    )
    page.get_by_role("button", name="Confirm my email").click()
    page.get_by_role("link", name="Register a camera").click()
    lat, lon = spot()
    page.get_by_label("Latitude").fill(f"{lat:.6f}")
    page.get_by_label("Longitude").fill(f"{lon:.6f}")
    page.get_by_label("Label").fill("Loading bay")
    page.get_by_label("Integrated").check()
    expect(page.get_by_label("Recorder address for pulls")).to_be_visible()
    page.get_by_label("Recorder address for pulls").fill("ftp://nvr.example.org/export")
    page.get_by_role("button", name="Register camera").click()
    expect(page.get_by_role("alert")).to_contain_text("must start with http:// or https://")
    expect(page.get_by_label("Label")).to_have_value("Loading bay")  # nothing typed is lost
    shot(page, web.shots, "resident-camera-error")
    # A public address literal: pull addresses must resolve to public networks (no DNS here).
    page.get_by_label("Recorder address for pulls").fill("https://93.184.215.14/export")
    page.get_by_role("button", name="Register camera").click()
    expect(page.get_by_text("awaiting staff approval")).to_be_visible()
    page.get_by_role("link", name="Edit Loading bay").click()
    shot(page, web.shots, "resident-camera-edit")
    page.goto(f"{web.url}/resident")
    page.get_by_label("I want to leave the program").check()
    page.get_by_role("button", name="Leave the program").click()
    expect(page.get_by_role("heading", name="You have left the program")).to_be_visible()
    shot(page, web.shots, "resident-withdrawn")
    resp = page.goto(f"{web.url}/resident/link/no-such-link")
    assert resp is not None and resp.status == 403
    shot(page, web.shots, "resident-bad-link")
