"""Custody report benchmarks, each beside an anchor measured in the same run.

1. PDF generation (render + PAdES signature) for a case with 1,000 custody events. Goal < 3 s.
   Anchor: building the same case's custody bundle (ledger reads and inclusion proofs) alone.
2. `custody verify` of a 1 GiB file with its bundle, beside hashlib alone on the same file.
   Goal within 1.2x of hashing alone.

    .venv/bin/python bench/report.py [--events 1000] [--file-mib 1024]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.db import create_db_engine, migrate
from custody.devsecrets import ensure_dev_secrets
from custody.ledger.bundle_verify import verify_file
from custody.ledger.entries import CustodyEvent, EventType, file_facts, request_facts
from custody.ledger.note import Signer
from custody.ledger.store import Ledger
from custody.localtime import zone
from custody.models import Case, Evidence
from custody.timeutil import rfc3339
from reports.bundle import BundleFacts, build_bundle
from reports.facts import Custodian, ReportFacts
from reports.pdf import render_report
from reports.signing import ReportSigner

MPD_NAME = "Metropolitan Police Department"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--file-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        secrets = ensure_dev_secrets(home)
        engine = create_db_engine(f"sqlite:///{home / 'r.db'}")
        migrate(engine)
        ledger = Ledger(
            engine, Signer.from_seed("bench.custody/ledger", base64.b64encode(os.urandom(32)).decode())
        )
        now = datetime.now(UTC)
        case = Case(
            id=str(uuid.uuid4()), title="Benchmark case", agency="MPD", created_by="bench", created_at=now
        )
        path = home / "footage.mp4"
        with path.open("wb") as fh:
            block = os.urandom(1 << 20)
            for _ in range(args.file_mib):
                fh.write(block)
        t0 = time.perf_counter()
        h = hashlib.sha256()
        with path.open("rb", buffering=0) as fh:
            buf = bytearray(4 << 20)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                h.update(view[:n])
        hash_s = time.perf_counter() - t0
        digest = h.hexdigest()
        evidence = [
            Evidence(
                id=str(uuid.uuid4()),
                request_id=str(uuid.uuid4()),
                case_id=case.id,
                camera_id=str(uuid.uuid4()),
                filename=f"cam-{i}.mp4",
                object_key="k",
                size=path.stat().st_size if i == 0 else 1000 + i,
                sha256=digest if i == 0 else hashlib.sha256(str(i).encode()).hexdigest(),
                content_type="video/mp4",
                status="attached",
                received_at=now,
                verified_at=now,
            )
            for i in range(20)
        ]
        # Each file arrives as custody records it (facts bound, so verify's step 5 has work to do).
        ledger.append(
            [
                (
                    f"arrive-{ev.id}-{kind}",
                    CustodyEvent(
                        kind,
                        actor="owner-link",
                        agency="MPD",
                        case_id=case.id,
                        request_id=ev.request_id,
                        evidence_id=ev.id if kind == EventType.file_received else None,
                        sha256=ev.sha256 if kind == EventType.file_received else None,
                        facts=request_facts(
                            camera_id=ev.camera_id,
                            camera_label=f"Camera {n}",
                            camera_kind="registered",
                            window_start=now,
                            window_end=now,
                        )
                        if kind == EventType.request_created
                        else file_facts(
                            filename=ev.filename,
                            size=ev.size,
                            content_type=ev.content_type,
                            camera_id=ev.camera_id,
                        ),
                    ),
                )
                for n, ev in enumerate(evidence)
                for kind in (EventType.request_created, EventType.file_received)
            ]
        )
        types = list(EventType)
        ledger.append(
            [
                (
                    f"e{i}",
                    CustodyEvent(
                        types[i % 14],
                        actor=f"user-{i % 7}",
                        agency="MPD",
                        case_id=case.id,
                        request_id=evidence[i % 20].request_id,
                        evidence_id=evidence[i % 20].id,
                        sha256=evidence[i % 20].sha256,
                        detail=f"event {i}",
                    ),
                )
                for i in range(args.events)
            ]
        )
        requests = [
            {
                "id": ev.request_id,
                "camera_id": ev.camera_id,
                "camera_label": f"Camera {n}",
                "kind": "registered",
                "status": "attached",
                "owner": f"Owner {n}",
                "window_start": rfc3339(now),
                "window_end": rfc3339(now),
            }
            for n, ev in enumerate(evidence)
        ]
        facts = BundleFacts(
            case=case,
            evidence=evidence,
            cameras={
                ev.camera_id: {"label": f"Camera {n}", "kind": "registered"} for n, ev in enumerate(evidence)
            },
            requests=requests,
            generated_by="Sam Okafor (prosecutor, MPD)",
        )
        t0 = time.perf_counter()
        bundle, _ = build_bundle(ledger, facts)
        bundle_s = time.perf_counter() - t0
        people = ReportFacts(
            tz=zone("America/New_York"),
            case_reference=case.reference,
            agency_name=MPD_NAME,
            custodian=Custodian(
                "Sam Okafor",
                "Assistant United States Attorney",
                "prosecutor",
                "MPD",
                "Metropolitan Police Department",
            ),
            pseudonymise_owners=False,
            parties={f"user-{i}": f"Person {i} (investigator, MPD)" for i in range(7)},
        )
        signer = ReportSigner(secrets["report_signing_cert"], secrets["report_signing_key"])
        t0 = time.perf_counter()
        pdf = signer.sign(render_report(bundle, people, signer_subject=signer.subject, self_signed=True))
        pdf_s = time.perf_counter() - t0
        print(
            f"[report] PDF for {args.events} custody events ({len(pdf) / 1e6:.1f} MB, signed): "
            f"{pdf_s:6.2f} s   "
            f"anchor: building its bundle alone {bundle_s:6.2f} s   (goal < 3 s)"
        )
        bpath = home / "bundle.json"
        bpath.write_text(json.dumps(bundle))
        t0 = time.perf_counter()
        report = verify_file(path, bpath, trusted=ledger.verifier)
        verify_s = time.perf_counter() - t0
        assert report.sha256 == digest
        print(
            f"[verify] custody verify of a {args.file_mib} MiB file with its bundle: "
            f"{verify_s:6.2f} s   "
            f"anchor hashlib alone: {hash_s:6.2f} s   ratio {verify_s / hash_s:.2f}x   (goal <= 1.2x)"
        )


if __name__ == "__main__":
    main()
