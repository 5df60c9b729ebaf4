"""The chain-of-custody report for a case, as a PDF (reportlab), built from the custody bundle.

The PDF states the same facts as the bundle (a test compares them): every evidence file with its full
SHA-256, each file's custody timeline from the ledger, the consent record, the signed checkpoint with
each event's inclusion proof, and a certification page in the form used for self-authenticating
electronic evidence (FRE 902(14)). Every page carries the case id and "page X of Y".
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

_styles = getSampleStyleSheet()
H1 = ParagraphStyle("h1", parent=_styles["Heading1"], fontSize=16, spaceAfter=8)
H2 = ParagraphStyle("h2", parent=_styles["Heading2"], fontSize=12.5, spaceBefore=10, spaceAfter=6)
BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontSize=9.5, leading=12.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8, leading=10)
MONO = ParagraphStyle("mono", parent=BODY, fontName="Courier", fontSize=7.5, leading=9.5)
CONSENT_TYPES = (
    "request_created",
    "owner_notified",
    "reminder_sent",
    "consent_given",
    "consent_declined",
    "request_expired",
    "request_cancelled",
)
SHARE_TYPES = ("case_shared", "share_revoked")


def _offset(seconds: int | None) -> str:
    if seconds is None:
        return "offset unknown"
    if seconds == 0:
        return "on time"
    return f"{abs(seconds)} s {'fast' if seconds > 0 else 'slow'} (owner's statement)"


def _p(text: object, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _hash_cell(value: str) -> Paragraph:
    # Full hashes, broken in two so they never run off the page.
    return Paragraph(escape(value[:32]) + "<br/>" + escape(value[32:]), MONO)


class _NumberedCanvas(Canvas):
    """Draws 'page X of Y' and the case id on every page once the page count is known."""

    case_id = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()  # type: ignore[attr-defined]

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont("Helvetica", 7.5)
            self.setFillColor(colors.grey)
            self.drawString(0.75 * inch, 0.5 * inch, f"Chain-of-custody report - case {self.case_id}")
            self.drawRightString(LETTER[0] - 0.75 * inch, 0.5 * inch, f"page {self._pageNumber} of {total}")  # type: ignore[attr-defined]
            super().showPage()
        super().save()


def _table(rows: list[list[Any]], widths: list[float]) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8.5),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf2")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b8c2cc")),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def render_report(
    bundle: dict[str, Any],
    *,
    signer_subject: str = "",
    self_signed: bool = False,
    pseudonymise_owners: bool = False,
) -> bytes:
    """A PDF of the bundle's facts. `bundle` is what reports.bundle.build_bundle returns."""
    case, ledger = bundle["case"], bundle["ledger"]
    entries = [(item, json.loads(item["entry"])) for item in ledger["entries"]]
    key_fpr = hashlib.sha256(ledger["public_key"].encode()).hexdigest()
    story: list[Any] = []

    # Cover
    story += [
        _p("Chain-of-Custody Report", H1),
        _p(f"Case: {case['title']}", H2),
        _table(
            [
                [_p("Field", SMALL), _p("Value", SMALL)],
                [_p("Case id"), _p(case["id"])],
                [_p("Agency"), _p(case["agency"])],
                [_p("Case opened"), _p(case["created_at"])],
                [_p("Report generated"), _p(f"{bundle['generated_at']} by {bundle['generated_by']}")],
                [_p("Evidence files"), _p(len(bundle["evidence"]))],
                [_p("Custody events"), _p(len(entries))],
                [_p("Ledger checkpoint"), _p(f"{ledger['origin']}, tree size {ledger['tree_size']}")],
                [_p("Ledger key fingerprint"), _hash_cell(key_fpr)],
                [_p("PDF signed by"), _p(signer_subject or "(unsigned)")],
            ],
            [1.8 * inch, 5.0 * inch],
        ),
        Spacer(1, 10),
        *(
            [
                _p(
                    "This report is signed with a self-signed certificate generated by an embedded "
                    "(development) installation. Courts should be given reports signed with the agency's "
                    "own certificate.",
                    SMALL,
                ),
                Spacer(1, 6),
            ]
            if self_signed
            else []
        ),
        _p(
            "Every custody event below is an entry of a tamper-evident ledger (an RFC 9162 Merkle log). "
            "Each is shown with its ledger index and the inclusion proof that ties it to the signed "
            "checkpoint in the ledger section, so the record can be checked independently with the "
            "custody bundle and the command `custody verify FILE --bundle BUNDLE.json --public-key KEY`."
        ),
        PageBreak(),
    ]

    # Evidence table
    story.append(_p("Evidence", H1))
    rows: list[list[Any]] = [
        [_p(h, SMALL) for h in ("File", "Size / type", "SHA-256", "Source", "Received / verified")]
    ]
    for ev in bundle["evidence"]:
        rows.append(
            [
                _p(f"{ev['filename']}\n({ev['id']})", SMALL),
                _p(f"{ev['size']:,} bytes, {ev['content_type']}, {ev['status']}", SMALL),
                _hash_cell(ev["sha256"]),
                _p(
                    f"{ev.get('camera_label') or ev['camera_id']} ({ev.get('camera_kind')}); "
                    f"recorder clock {_offset(ev.get('camera_clock_offset_s'))}; request {ev['request_id']}",
                    SMALL,
                ),
                _p(f"{ev['received_at']} / {ev.get('verified_at') or '-'}", SMALL),
            ]
        )
    story.append(_table(rows, [1.35 * inch, 1.1 * inch, 2.1 * inch, 1.35 * inch, 1.1 * inch]))

    # Custody timeline per evidence item
    for ev in bundle["evidence"]:
        story.append(_p(f"Custody timeline: {ev['filename']}", H2))
        rows = [[_p(h, SMALL) for h in ("Ledger #", "When (UTC)", "Event", "Who", "Agency", "Detail")]]
        for item, entry in entries:
            if entry.get("evidence_id") == ev["id"] or (
                entry.get("request_id") == ev["request_id"] and not entry.get("evidence_id")
            ):
                rows.append(
                    [
                        _p(item["index"], SMALL),
                        _p(entry["at"], SMALL),
                        _p(entry["type"], SMALL),
                        _p(entry["actor"], SMALL),
                        _p(entry.get("agency", ""), SMALL),
                        _p(entry.get("detail", ""), SMALL),
                    ]
                )
        story.append(_table(rows, [0.6 * inch, 1.35 * inch, 1.15 * inch, 1.3 * inch, 0.6 * inch, 2.0 * inch]))

    # Consent record
    story.append(_p("Consent record", H1))
    owner_note = (
        "Owners are shown by a pseudonym (CUSTODY_REPORT_PSEUDONYMISE_OWNERS)."
        if pseudonymise_owners
        else "Owners are shown as registered with the program."
    )
    story.append(
        _p(
            owner_note + " In the ledger an owner acts through the id of the consent link they used; "
            "the link itself is never stored.",
            SMALL,
        )
    )
    rows = [[_p(h, SMALL) for h in ("Request", "Camera", "Kind", "Owner", "Outcome")]]
    for req in bundle.get("requests", []):
        cam: dict[str, Any] = next((e for e in bundle["evidence"] if e["camera_id"] == req["camera_id"]), {})
        rows.append(
            [
                _p(req["id"], SMALL),
                _p(cam.get("camera_label") or req["camera_id"], SMALL),
                _p(req["kind"], SMALL),
                _p(req.get("owner") or "-", SMALL),
                _p(req["status"], SMALL),
            ]
        )
    story.append(_table(rows, [2.2 * inch, 1.5 * inch, 0.8 * inch, 1.4 * inch, 1.1 * inch]))
    story.append(Spacer(1, 6))
    rows = [[_p(h, SMALL) for h in ("Ledger #", "When (UTC)", "Event", "Request", "Actor")]]
    for item, entry in entries:
        if entry["type"] in CONSENT_TYPES:
            rows.append(
                [
                    _p(item["index"], SMALL),
                    _p(entry["at"], SMALL),
                    _p(entry["type"], SMALL),
                    _p(entry.get("request_id", ""), SMALL),
                    _p(entry["actor"], SMALL),
                ]
            )
    story.append(_table(rows, [0.6 * inch, 1.4 * inch, 1.3 * inch, 2.2 * inch, 1.5 * inch]))

    # Sharing: who outside the owning agency could read the case, and what they did through a share
    story.append(_p("Access by other agencies", H1))
    shared = [
        (item, entry)
        for item, entry in entries
        if entry["type"] in SHARE_TYPES or " via share " in entry.get("detail", "")
    ]
    if not shared:
        story.append(_p("This case was never shared outside its agency.", SMALL))
    else:
        story.append(
            _p(
                "Read-only shares granted and revoked, and every read, view, download and report made "
                "through a share (from the ledger).",
                SMALL,
            )
        )
        rows = [[_p(h, SMALL) for h in ("Ledger #", "When (UTC)", "Event", "Agency", "Detail")]]
        for item, entry in shared:
            rows.append(
                [
                    _p(item["index"], SMALL),
                    _p(entry["at"], SMALL),
                    _p(entry["type"], SMALL),
                    _p(entry.get("agency", ""), SMALL),
                    _p(entry.get("detail", ""), SMALL),
                ]
            )
        story.append(_table(rows, [0.6 * inch, 1.35 * inch, 1.25 * inch, 0.8 * inch, 3.0 * inch]))

    # Ledger section
    story += [
        PageBreak(),
        _p("Ledger proof", H1),
        _p("Signed checkpoint (C2SP signed note):", BODY),
        Preformatted(ledger["checkpoint"], MONO, maxLineLength=96, newLineChars=""),
        _p("Verifier key:", BODY),
        Preformatted(ledger["public_key"], MONO, maxLineLength=96, newLineChars=""),
        _p(f"Key fingerprint (SHA-256): {key_fpr}", SMALL),
        _p("Inclusion proofs (RFC 9162), one per custody event, base64 hashes from the leaf upward:", BODY),
    ]
    for item, entry in entries:
        story.append(
            KeepTogether(
                [
                    _p(f"#{item['index']} {entry['type']} at {entry['at']}", SMALL),
                    Preformatted("\n".join(item["inclusion_proof"]) or "(the tree had one entry)", MONO),
                    Spacer(1, 4),
                ]
            )
        )

    # Certification page
    story += [
        PageBreak(),
        _p("Certification of authenticity of electronic records (FRE 902(14))", H1),
        _p(
            "I, the undersigned custodian, certify that each file listed in this report was identified by "
            "a process of digital identification: its SHA-256 hash was computed when it was received, "
            "recomputed from storage before it was attached to the case, and recorded in a tamper-evident "
            "ledger. A copy whose SHA-256 hash equals the value listed is an exact copy of the original "
            "received from the camera owner or the integrated camera."
        ),
        Spacer(1, 8),
        _p("Hash algorithm: SHA-256 (FIPS 180-4). Ledger: RFC 9162 Merkle tree, Ed25519-signed checkpoints."),
        Spacer(1, 30),
        _table(
            [
                [_p("Custodian name", SMALL), _p("Title / agency", SMALL)],
                [Spacer(1, 28), Spacer(1, 28)],
                [_p("Signature", SMALL), _p("Date", SMALL)],
                [Spacer(1, 28), Spacer(1, 28)],
            ],
            [3.4 * inch, 3.4 * inch],
        ),
    ]

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=LETTER,
        leftMargin=0.75 * inch,
        rightMargin=0.75 * inch,
        topMargin=0.75 * inch,
        bottomMargin=0.8 * inch,
        title=f"Chain-of-custody report {case['id']}",
        author="custody",
    )

    class Numbered(_NumberedCanvas):
        case_id = case["id"]

    doc.build(story, canvasmaker=Numbered)
    return buf.getvalue()
