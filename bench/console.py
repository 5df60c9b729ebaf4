"""Web console benchmark, beside an anchor measured in the same run.

The case page of a case with 1,000 footage requests and 200 evidence files, server-rendered with
its live-status data, beside the JSON API returning the same requests and evidence
(`GET /cases/{id}/requests` + `GET /cases/{id}/evidence`) to the same client. The figure is the
ratio: what rendering the HTML page costs on top of fetching the same facts.

    .venv/bin/python bench/console.py [--requests 1000] [--evidence 200] [--rounds 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient

from api.app import create_app
from custody.db import session_scope
from custody.geo import lat_cell
from custody.models import Camera, Case, Evidence, FootageRequest, Incident, Owner
from custody.services.users import create_user
from custody.settings import load_settings


def _seed(engine, user_id: str, requests: int, evidence: int) -> str:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        owner = Owner(name="Bench Owner", email=f"bench-{uuid.uuid4().hex[:8]}@example.org", confirmed_at=now)
        case = Case(title="Benchmark case", agency="MPD", created_by=user_id)
        s.add_all([owner, case])
        s.flush()
        incident = Incident(
            case_id=case.id,
            lat=38.9,
            lon=-77.0,
            radius_m=500,
            window_start=now - timedelta(hours=1),
            window_end=now,
            created_by=user_id,
        )
        s.add(incident)
        s.flush()
        for i in range(requests):
            lat = 38.9 + i * 1e-5
            cam = Camera(
                owner_id=owner.id,
                label=f"Camera {i}",
                lat=lat,
                lon=-77.0,
                lat_cell=lat_cell(lat),
                kind="registered",
                approved_at=now,
            )
            s.add(cam)
            s.flush()
            req = FootageRequest(
                case_id=case.id,
                incident_id=incident.id,
                camera_id=cam.id,
                kind="registered",
                status="attached" if i < evidence else "notified",
                window_start=incident.window_start,
                window_end=now,
            )
            s.add(req)
            s.flush()
            if i < evidence:
                s.add(
                    Evidence(
                        request_id=req.id,
                        case_id=case.id,
                        camera_id=cam.id,
                        filename=f"clip-{i}.mp4",
                        object_key="k",
                        size=1_000_000 + i,
                        sha256=f"{i:064x}",
                        content_type="video/mp4",
                        status="attached",
                        verified_at=now,
                    )
                )
        return case.id


def _time(fn, rounds: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--evidence", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp), mode="dev", demo_users=False)
        app = create_app(settings)
        with TestClient(app) as client:
            password = uuid.uuid4().hex
            with session_scope(app.state.engine) as s:
                user = create_user(
                    session=s, username="bench-inv", password=password, role="investigator", agency="MPD"
                )
                user_id = user.id
            case_id = _seed(app.state.engine, user_id, args.requests, args.evidence)
            token = client.post("/auth/token", data={"username": "bench-inv", "password": password}).json()
            bearer = {"Authorization": f"Bearer {token['access_token']}"}
            form = client.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            signed = client.post(
                "/login",
                data={"username": "bench-inv", "password": password, "csrf_token": csrf},
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.text

            def page() -> None:
                resp = client.get(f"/console/cases/{case_id}")
                assert (resp.status_code == 200 and "Camera 999" in resp.text) or args.requests < 1000

            def api() -> None:
                a = client.get(f"/cases/{case_id}/requests", headers=bearer)
                b = client.get(f"/cases/{case_id}/evidence", headers=bearer)
                assert a.status_code == b.status_code == 200 and len(a.json()) == args.requests

            def live() -> None:
                assert client.get(f"/console/cases/{case_id}/requests.json").status_code == 200

            for warm in (page, api, live):
                warm()
            page_s, api_s, live_s = (
                _time(page, args.rounds),
                _time(api, args.rounds),
                _time(live, args.rounds),
            )
            size = len(client.get(f"/console/cases/{case_id}").content)
    print(
        f"case page, {args.requests} requests + {args.evidence} files ({size / 1024:.0f} KiB HTML): "
        f"{page_s * 1000:.1f} ms median of {args.rounds}"
    )
    print(
        f"  anchor: JSON API for the same requests and evidence: {api_s * 1000:.1f} ms "
        f"-> {page_s / api_s:.2f}x"
    )
    print(
        f"  live-status poll (requests.json): {live_s * 1000:.1f} ms -> {live_s / api_s:.2f}x of the anchor"
    )


if __name__ == "__main__":
    main()
