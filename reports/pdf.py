"""The chain-of-custody report for a case, as a PDF (reportlab), built from the custody bundle.

Written for the person who reads it in court, or for the defense: every file with its full SHA-256,
every custody event of the case (one table, in ledger order, each with its index), people and cameras
by name, times in the program's zone with UTC beside them, how to check the report independently
(before the proofs themselves), and a certification in the 28 U.S.C. § 1746 declaration form listing
every file it certifies. No value is broken inside a token: hashes are printed whole on one line in
a monospaced font, and ids are shortened to 8 characters where the appendix or the bundle holds
them in full. Every page carries the case reference and "page X of Y".
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    KeepTogether,
    PageBreak,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from custody import localtime
from reports.facts import ReportFacts

_styles = getSampleStyleSheet()
H1 = ParagraphStyle("h1", parent=_styles["Heading1"], fontSize=15, spaceBefore=14, spaceAfter=8)
H2 = ParagraphStyle("h2", parent=_styles["Heading2"], fontSize=11.5, spaceBefore=12, spaceAfter=5)
BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontSize=9.5, leading=12.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8, leading=10)
HEAD = ParagraphStyle("head", parent=SMALL, fontName="Helvetica-Bold")
CELL = ParagraphStyle("cell", parent=SMALL, splitLongWords=False)
#: Free text such as file names may break inside a long word rather than run over the next column
#: (hashes and ids never use this style).
WRAP = ParagraphStyle("wrap", parent=SMALL, splitLongWords=True)
MONO = ParagraphStyle("mono", parent=BODY, fontName="Courier", fontSize=7.2, leading=9, splitLongWords=False)
MONO_SMALL = ParagraphStyle("monosmall", parent=MONO, fontSize=6.6, leading=8.2)
WIDTH = LETTER[0] - 1.5 * inch  # the frame's width: 7 in
UUID_RE = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
CONSENT_TYPES = frozenset(
    {
        "request_created",
        "owner_notified",
        "reminder_sent",
        "consent_given",
        "consent_declined",
        "request_expired",
        "request_cancelled",
        "request_failed",
    }
)
SHARE_TYPES = frozenset({"case_shared", "share_revoked"})


# --- small pieces ----------------------------------------------------------------------------------


def _p(text: object, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _short(value: str | None) -> str:
    """An id as people can quote it; the appendix and the bundle hold the full value."""
    return (value or "")[:8]


def _shorten_ids(text: str) -> str:
    """UUIDs inside free text, shortened (they would otherwise be broken across lines)."""
    return UUID_RE.sub(lambda m: m.group(1), text)


def _words(event_type: str) -> str:
    return event_type.replace("_", " ")


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _when_cell(value: str | None, tz: ZoneInfo) -> str:
    """Local time with its zone, and UTC on the line below (a plain two-line cell)."""
    if not value:
        return "—"
    moment = _at(value)
    return f"{localtime.when(moment, tz, seconds=True)}\n{localtime.utc_beside(moment, tz)}"


def _when_text(value: str | None, tz: ZoneInfo) -> str:
    return localtime.with_utc(_at(value), tz) if value else "—"


def _window(start: str | None, end: str | None, tz: ZoneInfo) -> str:
    if not start or not end:
        return "—"
    return localtime.window(_at(start), _at(end), tz)


def _size(n: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= factor:
            return f"{n:,} bytes ({n / factor:.1f} {unit})"
    return f"{n:,} bytes"


def _retention(ev: dict[str, Any], tz: ZoneInfo) -> str:
    """The object version's COMPLIANCE retention: the store refuses to delete it before then."""
    if not ev.get("retain_until"):
        return "the store's default retention"
    return _when_text(ev.get("retain_until"), tz) + " (COMPLIANCE: no deletion before)"


def _basis(ev: dict[str, Any], logged: dict[int, dict[str, Any]]) -> str:
    """The file's basis as the report's evidence table names it: "Owner's consent, terms 2026-11,
    ledger entry 123" (the terms from the basis entry's facts, which the log binds)."""
    basis = ev.get("basis")
    if not basis:
        return "not recorded (received before custody recorded bases)"
    index = basis["ledger_index"]
    words = "Owner's consent" if basis["type"] == "consent" else "Owner's integration agreement"
    facts = (logged.get(index) or {}).get("facts") or {}
    terms = f", terms {facts['terms_version']}" if facts.get("terms_version") else ""
    return f"{words}{terms}, ledger entry {index}"


def _offset(seconds: int | None) -> str:
    if seconds is None:
        return "not known"
    if seconds == 0:
        return "on time (owner's statement)"
    return f"{abs(seconds)} s {'fast' if seconds > 0 else 'slow'} (owner's statement)"


#: Plain-string cells (no wrapping needed) are far cheaper to lay out than paragraphs: the fonts of
#: such columns, (first column, last column, font, size).
PlainFonts = list[tuple[int, int, str, float]]


def _table(
    rows: list[list[Any]], widths: list[float], zebra: bool = True, plain: PlainFonts | None = None
) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    style: list[Any] = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf2")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b8c2cc")),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    for first, last, font, size in plain or []:
        style.append(("FONT", (first, 1), (last, -1), font, size, size + 1.6))
    if zebra:
        style += [("BACKGROUND", (0, r), (-1, r), colors.HexColor("#f6f8fa")) for r in range(2, len(rows), 2)]
    table.setStyle(TableStyle(style))
    return table


def _long_table(
    rows: list[list[Any]], widths: list[float], chunk: int = 30, plain: PlainFonts | None = None
) -> list[Table]:
    """A long table as consecutive tables of `chunk` rows, each with the header: reportlab splits one
    huge table across pages at a cost that grows with its square, and a 1,000-event case must render
    in well under the time a prosecutor waits."""
    head, body = rows[0], rows[1:]
    return [
        _table([head, *body[i : i + chunk]], widths, plain=plain) for i in range(0, max(len(body), 1), chunk)
    ]


def _head(*names: str) -> list[Paragraph]:
    return [_p(n, HEAD) for n in names]


def _facts_table(rows: list[tuple[str, Any]], label_width: float = 1.75 * inch) -> Table:
    cells = [[_p(k, HEAD), v if isinstance(v, Paragraph) else _p(v, CELL)] for k, v in rows]
    table = Table(cells, colWidths=[label_width, WIDTH - label_width])
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.3, colors.HexColor("#d8dde3")),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


class _NumberedCanvas(Canvas):
    """Draws the case reference and 'page X of Y' on every page once the page count is known."""

    footer = ""

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
            self.drawString(0.75 * inch, 0.5 * inch, self.footer)
            self.drawRightString(LETTER[0] - 0.75 * inch, 0.5 * inch, f"page {self._pageNumber} of {total}")  # type: ignore[attr-defined]
            super().showPage()
        super().save()


def _signature_time(signer_subject: str, tsa: str | None) -> str:
    if not signer_subject:
        return "not signed"
    if tsa:
        return (
            f"Independently timestamped by the time-stamping authority {tsa} (RFC 3161, PAdES B-T); a PDF "
            "reader shows that time in the signature's details"
        )
    return "custody's own clock; no independent timestamp (PAdES B-B)"


# --- the report ------------------------------------------------------------------------------------


def render_report(
    bundle: dict[str, Any],
    facts: ReportFacts,
    *,
    signer_subject: str = "",
    self_signed: bool = False,
    timestamp_authority: str | None = None,
) -> bytes:
    """A PDF of the bundle's facts, with names from `facts`. `bundle` is what build_bundle returns.
    `timestamp_authority`: the TSA whose RFC 3161 timestamp the signature will carry (PAdES B-T);
    None: no timestamp (B-B), and the cover says the signing time is custody's own clock."""
    tz = facts.tz
    case, ledger = bundle["case"], bundle["ledger"]
    entries = [(item, json.loads(item["entry"])) for item in ledger["entries"]]
    key_fpr = hashlib.sha256(ledger["public_key"].encode()).hexdigest()
    evidence = bundle["evidence"]
    requests = bundle.get("requests", [])
    labels = {r["camera_id"]: r.get("camera_label") for r in requests}
    labels.update({e["camera_id"]: e.get("camera_label") for e in evidence})
    files = {e["id"]: e for e in evidence}
    req_cameras = {
        r["id"]: labels.get(r["camera_id"]) or "camera " + _short(r["camera_id"]) for r in requests
    }

    parties: dict[str, str] = dict(facts.parties)

    def who(actor: str) -> str:
        return parties.get(actor, actor)

    def concerning(entry: dict[str, Any]) -> str:
        if entry.get("evidence_id") in files:
            return str(files[entry["evidence_id"]]["filename"])
        if entry.get("request_id"):
            return req_cameras.get(entry["request_id"], "request " + _short(entry["request_id"]))
        return "the case"

    story: list[Any] = []

    # 1. Cover ---------------------------------------------------------------------------------------
    story += [
        _p("Chain-of-Custody Report", H1),
        _p(case["title"], H2),
        _facts_table(
            [
                ("Case reference", facts.case_reference),
                ("Case id", Paragraph(escape(case["id"]), MONO)),
                ("Agency", f"{facts.agency_name} ({case['agency']})"),
                ("Case opened", _when_text(case["created_at"], tz)),
                *(
                    [("CAD incident", f"{case['cad_number']} (from the crime center's incident feed)")]
                    if case.get("cad_number")
                    else []
                ),
                ("Report generated", f"{_when_text(bundle['generated_at'], tz)} by {bundle['generated_by']}"),
                ("Times in this report", f"{tz.key}, with UTC beside each time where evidence is concerned"),
                ("Evidence files", str(len(evidence))),
                ("Footage requests", str(len(requests))),
                ("Custody events listed", f"{len(entries)} (ledger entries of this case, all listed below)"),
                ("Ledger checkpoint", f"{ledger['origin']}, tree size {ledger['tree_size']:,}"),
                ("Ledger key fingerprint", Paragraph(key_fpr, MONO)),
                ("PDF signed by", signer_subject or "not signed"),
                ("Signature time", _signature_time(signer_subject, timestamp_authority)),
            ]
        ),
        Spacer(1, 8),
    ]
    if self_signed:
        story += [
            _p(
                "This PDF is signed with a self-signed certificate generated by an embedded (development) "
                "installation, which is not fit for court: reports for court are signed with the agency's "
                "own certificate.",
                SMALL,
            ),
            Spacer(1, 6),
        ]
    story += [
        _p(
            "Every custody event in this report is an entry of a tamper-evident ledger (an RFC 9162 "
            "Merkle log whose checkpoints are signed with Ed25519). The section \u201cHow to check this "
            "report\u201d says how anyone can check the files and the events independently of custody, "
            "offline, with the custody bundle of this case."
        ),
        PageBreak(),
    ]

    # 2. Evidence --------------------------------------------------------------------------------------
    story.append(_p("Evidence", H1))
    if not evidence:
        story.append(_p("No file has been received for this case.", SMALL))
    logged = {
        item["index"]: json.loads(item["entry"])
        for item in [*bundle["ledger"]["entries"], *bundle["ledger"].get("basis_entries", [])]
    }
    for number, ev in enumerate(evidence, start=1):
        camera = ev.get("camera_label") or "camera " + _short(ev["camera_id"])
        story.append(
            KeepTogether(
                [
                    _p(f"File {number} of {len(evidence)}: {ev['filename']}", H2),
                    _facts_table(
                        [
                            ("SHA-256 (master)", Paragraph(ev["sha256"], MONO)),
                            ("Size and type", f"{_size(ev['size'])}, {ev['content_type']}"),
                            *_working_copy_rows(ev, tz),
                            ("Status", ev["status"]),
                            ("Camera", f"{camera} ({ev.get('camera_kind') or 'kind not known'})"),
                            ("Recorder clock", _offset(ev.get("camera_clock_offset_s"))),
                            ("Requested window", _window(ev.get("window_start"), ev.get("window_end"), tz)),
                            ("Request", f"{_short(ev['request_id'])} (full id in the appendix)"),
                            ("Received", _when_text(ev.get("received_at"), tz)),
                            ("Verified from storage", _when_text(ev.get("verified_at"), tz)),
                            ("Retained until", _retention(ev, tz)),
                            ("Legal hold", "on: it cannot be deleted" if ev.get("legal_hold") else "none"),
                            ("Basis", _basis(ev, logged)),
                            ("Evidence id", Paragraph(ev["id"], MONO)),
                        ]
                    ),
                ]
            )
        )

    # 3. Requests and consent -------------------------------------------------------------------------
    story += [CondPageBreak(2 * inch), _p("Footage requests and consent", H1)]
    owners_note = (
        "Owners are shown by one stable pseudonym each (CUSTODY_REPORT_PSEUDONYMISE_OWNERS)."
        if facts.pseudonymise_owners
        else "Owners are shown by the name they registered with the program."
    )
    story.append(
        _p(
            owners_note + " An owner answers through consent links emailed for one request; the ledger "
            "records the link's id, never the link, and this report names the owner behind it.",
            SMALL,
        )
    )
    story.append(Spacer(1, 4))
    rows: list[list[Any]] = [_head("Request", "Camera", "Owner", "Requested window", "Outcome")]
    for req in requests:
        rows.append(
            [
                _p(_short(req["id"]), MONO_SMALL),
                _p(f"{req_cameras.get(req['id'])} ({req['kind']})", CELL),
                _p(req.get("owner") or "—", CELL),
                _p(_window(req.get("window_start"), req.get("window_end"), tz), CELL),
                _p(req["status"], CELL),
            ]
        )
    if len(rows) == 1:
        rows.append([_p("No footage request was made.", CELL), "", "", "", ""])
    story += _long_table(rows, [0.75 * inch, 1.55 * inch, 1.5 * inch, 2.3 * inch, 0.9 * inch])

    # 4. Custody events --------------------------------------------------------------------------------
    story += [CondPageBreak(2 * inch), _p("Custody events", H1)]
    story.append(
        _p(
            f"All {len(entries)} ledger entries of this case, in ledger order. \u201c#\u201d is the entry's "
            "index in the ledger; its inclusion proof is listed under \u201cLedger proof\u201d.",
            SMALL,
        )
    )
    story.append(Spacer(1, 4))
    rows = [_head("#", "When", "Event", "By", "Concerning", "Detail")]
    for item, entry in entries:
        rows.append(
            [
                str(item["index"]),
                _when_cell(entry["at"], tz),
                _words(entry["type"]),
                _p(who(entry["actor"]), CELL),
                _p(concerning(entry), WRAP),
                _p(_shorten_ids(entry.get("detail", "")), WRAP),
            ]
        )
    story += _long_table(
        rows,
        [0.5 * inch, 1.55 * inch, 1.0 * inch, 1.4 * inch, 1.2 * inch, 1.35 * inch],
        plain=[(0, 2, "Helvetica", 7)],
    )

    # 5. Access by other agencies ----------------------------------------------------------------------
    story += [CondPageBreak(1.5 * inch), _p("Access by other agencies", H1)]
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
        rows = [_head("#", "When", "Event", "By", "Detail")]
        for item, entry in shared:
            rows.append(
                [
                    str(item["index"]),
                    _when_cell(entry["at"], tz),
                    _words(entry["type"]),
                    _p(who(entry["actor"]), CELL),
                    _p(_shorten_ids(entry.get("detail", "")), CELL),
                ]
            )
        story += _long_table(
            rows,
            [0.5 * inch, 1.55 * inch, 1.1 * inch, 1.8 * inch, 2.05 * inch],
            plain=[(0, 2, "Helvetica", 7)],
        )

    # 6. How to check ----------------------------------------------------------------------------------
    bundle_name = f"custody-bundle-{case['id']}.json"
    story += [CondPageBreak(5 * inch), _p("How to check this report", H1)]
    story.append(
        _p(
            "Nothing here needs to be taken on trust. With the footage file, the custody bundle of this "
            "case and the ledger's public key, anyone can check offline, without custody's servers:"
        )
    )
    steps = [
        (
            "Get the bundle",
            f"GET /cases/{case['id']}/custody-bundle.json (saved as {bundle_name}); "
            "it holds the evidence hashes, the custody entries above as they were hashed, an inclusion "
            "proof for each and the signed checkpoint.",
        ),
        (
            "Get the public key out of band",
            "from the agency's auditor, or GET /ledger/public-key. Its SHA-256 fingerprint must equal "
            "the one printed below; the key inside the bundle alone proves nothing.",
        ),
        (
            "Run the check",
            f"custody verify FILE --bundle {bundle_name} --public-key KEY",
        ),
    ]
    story.append(
        _facts_table([(k, Paragraph(escape(v), MONO if k == "Run the check" else CELL)) for k, v in steps])
    )
    story.append(Spacer(1, 6))
    story.append(_p("What each step of custody verify proves:", BODY))
    proves = [
        ("1", "the bundle can be read (format custody-bundle/2)."),
        ("2", "the file's SHA-256, computed from the file you hold, is one of this case's evidence hashes."),
        (
            "3",
            "the checkpoint is signed by the key you trust (C2SP signed note, Ed25519): the tree size and "
            "root hash are the ledger's own.",
        ),
        (
            "4",
            "every custody entry hashes to its leaf and its inclusion proof leads to the signed root "
            "(RFC 9162 \u00a72.1.3.2): no entry was changed, added or removed.",
        ),
        (
            "5",
            "the file's name, size, type, camera, request, requested window and its received and verified "
            "times stated in the bundle equal what the signed entries record; a difference fails naming it.",
        ),
        (
            "6",
            "optionally, with a newer checkpoint and GET /ledger/proofs/consistency, that the ledger only "
            "grew since the bundle (RFC 9162 \u00a72.1.4.2).",
        ),
    ]
    story.append(
        _table(
            [_head("Step", "Proves"), *[[_p(n, CELL), _p(t, CELL)] for n, t in proves]],
            [0.5 * inch, WIDTH - 0.5 * inch],
            zebra=False,
        )
    )
    story.append(Spacer(1, 6))
    story.append(
        _p(
            "Not proven by the ledger, and shown as the owner's or the bundle's statement: the case title "
            "and description, the recorder clock offset (the owner's statement), owners' and staff "
            "members' names (resolved from custody's records when the report was made), and what a "
            "recording shows. This PDF's own signature (PAdES) shows it was not altered after signing"
            + (
                f"; its RFC 3161 timestamp from {timestamp_authority} shows when it was signed, "
                "independently of custody's clock, and keeps the signature checkable after the "
                "certificate expires."
                if timestamp_authority
                else "; it carries no independent timestamp, so its signing time is custody's own clock."
            ),
            SMALL,
        )
    )
    story.append(Spacer(1, 6))
    story.append(_facts_table([("Key fingerprint (SHA-256)", Paragraph(key_fpr, MONO))]))

    # 7. Ledger proof ----------------------------------------------------------------------------------
    story += [PageBreak(), _p("Ledger proof", H1)]
    story.append(
        _p("Signed checkpoint (C2SP signed note): origin, tree size, root hash (base64), signature.", SMALL)
    )
    story.append(Preformatted(ledger["checkpoint"], MONO, maxLineLength=110, newLineChars=""))
    story.append(_p("Verifier key (note verifier-key form):", SMALL))
    story.append(Preformatted(ledger["public_key"], MONO, maxLineLength=110, newLineChars=""))
    story.append(Spacer(1, 6))
    story.append(
        _p(
            "Inclusion proofs (RFC 9162 \u00a72.1.3), one per custody event: the sibling hashes, base64, "
            "from the leaf upward. custody verify recomputes each; they are printed so the record stands on "
            "paper too.",
            SMALL,
        )
    )
    rows = [_head("#", "Event", "Inclusion proof")]
    for item, entry in entries:
        proof = item["inclusion_proof"]
        rows.append(
            [
                str(item["index"]),
                _words(entry["type"]),
                "\n".join(proof) if proof else "(the tree had one entry)",
            ]
        )
    story += _long_table(
        rows,
        [0.55 * inch, 1.35 * inch, WIDTH - 1.9 * inch],
        plain=[(0, 1, "Helvetica", 7), (2, 2, "Courier", 6.6)],
    )

    # 8. Appendix: full identifiers -------------------------------------------------------------------
    story += [PageBreak(), _p("Appendix: full identifiers", H1)]
    story.append(_p("Shortened ids in this report are the first 8 characters of these.", SMALL))
    rows = [_head("What", "Name", "Full id")]
    for ev in evidence:
        rows.append([_p("evidence", CELL), _p(ev["filename"], CELL), _p(ev["id"], MONO_SMALL)])
    for req in requests:
        rows.append([_p("request", CELL), _p(req_cameras.get(req["id"]), CELL), _p(req["id"], MONO_SMALL)])
    for cam_id, label in sorted(labels.items(), key=lambda kv: kv[1] or ""):
        rows.append([_p("camera", CELL), _p(label or "—", CELL), _p(cam_id, MONO_SMALL)])
    for actor in sorted({entry["actor"] for _, entry in entries}):
        rows.append([_p("actor", CELL), _p(who(actor), CELL), _p(actor, MONO_SMALL)])
    story += _long_table(rows, [0.8 * inch, 3.0 * inch, WIDTH - 3.8 * inch])

    # 9. Certification ---------------------------------------------------------------------------------
    c = facts.custodian
    executed = datetime.fromisoformat(bundle["generated_at"].replace("Z", "+00:00")).astimezone(tz)
    story += [
        PageBreak(),
        _p("Certification of records of regularly conducted activity and of electronic records", H1),
        _p("Federal Rules of Evidence 902(11) and 902(14); declaration under 28 U.S.C. \u00a7 1746", SMALL),
        Spacer(1, 6),
        _p(
            f"I, {c.name}, {c.title or c.role} of the {c.agency_name}, am a custodian of the records of the "
            f"custody system used by the {facts.agency_name}, or am otherwise qualified by my duties to "
            "make this declaration. I declare that:"
        ),
        Spacer(1, 4),
        _p(
            "1. The records in this report (case "
            f"{facts.case_reference}) were made at or near the time of the events they record, by, or "
            "from information transmitted by, a person with knowledge of those events; they were kept in "
            "the course of a regularly conducted activity; and making them was a regular practice of "
            "that activity."
        ),
        _p(
            "2. Each file listed below was identified by a process of digital identification: its "
            "SHA-256 hash (FIPS 180-4) was computed as it was received, computed again from storage "
            "before it was attached to the case, and recorded in a tamper-evident ledger (RFC 9162 "
            "Merkle tree, Ed25519-signed checkpoints). A copy whose SHA-256 hash equals the value listed "
            "is an exact copy of the file received from the camera owner or the integrated camera."
        ),
        Spacer(1, 6),
    ]
    rows = [_head("File", "SHA-256")]
    for ev in evidence:
        rows.append([_p(ev["filename"], CELL), Paragraph(ev["sha256"], MONO_SMALL)])
    if len(rows) == 1:
        rows.append([_p("No file is certified: none was received.", CELL), ""])
    story.append(_table(rows, [WIDTH - 3.85 * inch, 3.85 * inch], zebra=False))
    story += [
        Spacer(1, 10),
        _p(
            "I declare under penalty of perjury under the laws of the United States of America that the "
            f"foregoing is true and correct. Executed on {executed.day} {executed:%B %Y} at "
            "____________________ (city, state)."
        ),
        Spacer(1, 26),
        _table(
            [
                _head("Signature", "Date"),
                [Spacer(1, 30), Spacer(1, 30)],
                _head("Name, title and agency", "Role in custody"),
                [
                    _p(f"{c.name}, {c.title or '(title not recorded)'}, {c.agency_name} ({c.agency})", CELL),
                    _p(c.role, CELL),
                ],
            ],
            [WIDTH * 0.62, WIDTH * 0.38],
            zebra=False,
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
        title=f"Chain-of-custody report, case {facts.case_reference}",
        author="custody",
    )

    class Numbered(_NumberedCanvas):
        footer = f"Chain-of-custody report \u2014 case {facts.case_reference} ({case['id']})"

    doc.build(story, canvasmaker=Numbered)
    return buf.getvalue()


def _working_copy_rows(ev: dict[str, Any], tz: ZoneInfo) -> list[tuple[str, Any]]:
    """Which file is the master, the working copy made from it (hash, ffmpeg version, ledger index)
    and what ffprobe read in the master's container (the recorder's statements)."""
    rows: list[tuple[str, Any]] = [
        ("Master", "the file as the owner sent it, unchanged: the exhibit; the SHA-256 above is its hash")
    ]
    copy = ev.get("working_copy")
    if copy:
        rows.append(("Working copy SHA-256", Paragraph(copy["sha256"], MONO)))
        made_by = copy.get("ffmpeg_version") or "ffmpeg"
        at = f", ledger entry {copy['ledger_index']}" if copy.get("ledger_index") is not None else ""
        rows.append(
            (
                "Working copy",
                f"{_size(copy.get('size') or 0)}, {copy.get('content_type') or 'video/mp4'}, for playing "
                f"only; made from the master by {made_by} with {copy.get('arguments') or '—'}{at}",
            )
        )
    elif ev.get("working_copy_state") == "not_made":
        rows.append(
            ("Working copy", f"not made: {ev.get('working_copy_detail') or 'ffmpeg could not read it'}")
        )
    facts = []
    if ev.get("duration_s") is not None:
        facts.append(f"duration {ev['duration_s']:.1f} s")
    if ev.get("video_codec"):
        facts.append(f"video {ev['video_codec']}")
    if ev.get("audio_codec"):
        facts.append(f"audio {ev['audio_codec']}")
    if ev.get("recorded_at"):
        facts.append(f"recorded (as the file states) {_when_text(ev['recorded_at'], tz)}")
    if facts:
        rows.append(("Container (ffprobe)", ", ".join(facts)))
    return rows
