"""The audit trail's pure parts: component and outcome in entries (old entries' bytes unchanged), the
keyed hash of unknown usernames, the auditor's time range in the program's zone, the CSV, the query."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from custody.ledger.entries import Component, CustodyEvent, EventType, Outcome, canonical, entry_object
from custody.ledger.verify import verify_export
from custody.localtime import LocalTimeError, zone
from custody.services import audit

AT = datetime(2026, 11, 28, 2, 25, 13, tzinfo=UTC)
NY = zone("America/New_York")


def test_component_and_outcome_are_hashed_when_set_and_absent_otherwise() -> None:
    old = CustodyEvent(EventType.evidence_downloaded, actor="u1", agency="MPD")
    assert b"component" not in canonical(entry_object(old, at=AT, prev="0" * 64))
    new = CustodyEvent(
        EventType.sign_in, actor="u1", detail="success as admin", component="console", outcome="success"
    )
    obj = entry_object(new, at=AT, prev="0" * 64)
    assert (obj["component"], obj["outcome"], obj["v"]) == ("console", "success", 1)
    assert canonical(obj).index(b'"component"') < canonical(obj).index(b'"prev"')


def test_an_export_mixing_old_and_audit_entries_verifies(tmp_path: Path) -> None:
    from sqlmodel import SQLModel

    import custody.models  # noqa: F401  (the tables)
    from custody.db import create_db_engine
    from custody.ledger.note import Signer
    from custody.ledger.store import Ledger

    engine = create_db_engine(f"sqlite:///{tmp_path / 'l.db'}")
    SQLModel.metadata.create_all(engine)
    ledger = Ledger(engine, Signer.from_seed("test/ledger", "A" * 43 + "="))
    ledger.append([("a", CustodyEvent(EventType.case_shared, actor="u1"))])
    audit.record(ledger, EventType.sign_out, actor="u1", component=Component.console)
    audit.record(ledger, EventType.sign_in, actor="u2", component=Component.api, outcome=Outcome.failure)
    ledger.export(tmp_path / "export")
    report = verify_export(tmp_path / "export", ledger.verifier)
    assert report.tree_size == 3  # the three events (the checkpoint_signed record comes after)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT type, actor, outcome FROM ledger_entries ORDER BY idx")).all()
    assert [tuple(r) for r in rows[:3]] == [
        ("case_shared", "u1", None),
        ("sign_out", "u1", "success"),
        ("sign_in", "u2", "failure"),
    ]
    found = audit.query(engine, audit.AuditFilter(types=("sign_in", "sign_out"), actors=("u1",)), limit=10)
    assert [(i, e["type"]) for i, e in found] == [(1, "sign_out")]
    engine.dispose()


def test_unknown_usernames_are_a_keyed_hash_of_the_name_as_compared() -> None:
    key = audit.username_key("seed-one")
    a = audit.unknown_user_actor(key, "  Mallory ")
    assert a == audit.unknown_user_actor(key, "mallory")
    assert a.startswith("unknown-user:") and "mallory" not in a and len(a) == len("unknown-user:") + 64
    assert a != audit.unknown_user_actor(audit.username_key("seed-two"), "mallory")
    assert a != audit.unknown_user_actor(key, "mallory2")


def test_time_range_is_typed_in_the_programs_zone_to_the_minute() -> None:
    since, until = audit.time_range("2026-11-27T21:25", "2026-11-27T21:30", NY)
    assert since == datetime(2026, 11, 28, 2, 25, tzinfo=UTC)
    assert until == datetime(2026, 11, 28, 2, 31, tzinfo=UTC)  # the whole "to" minute is in
    assert audit.time_range("", "", NY) == (None, None)
    # The hour repeated in autumn widens the range; the hour skipped in spring is refused.
    since, until = audit.time_range("2026-11-01T01:30", "2026-11-01T01:40", NY)
    assert since == datetime(2026, 11, 1, 5, 30, tzinfo=UTC) and until == datetime(
        2026, 11, 1, 6, 41, tzinfo=UTC
    )
    with pytest.raises(LocalTimeError, match="did not happen"):
        audit.time_range("2026-03-08T02:30", "", NY)
    with pytest.raises(LocalTimeError, match="ends before it starts"):
        audit.time_range("2026-11-27T21:30", "2026-11-27T21:00", NY)
    with pytest.raises(LocalTimeError):
        audit.time_range("yesterday", "", NY)


def test_csv_names_the_zone_and_defuses_formulas() -> None:
    rows = [
        (7, {"at": "2026-11-28T02:25:13Z", "type": "sign_in", "actor": "u1", "component": "api",
             "outcome": "failure", "detail": "=HYPERLINK(\"x\")"}),
        (3, {"at": "2026-07-01T12:00:00Z", "type": "case_shared", "actor": "u2"}),
    ]  # fmt: skip
    table = list(csv.DictReader(io.StringIO(audit.to_csv(rows, NY, {"u1": "Dana Reyes"}))))
    assert table[0]["time"] == "2026-11-27 21:25:13 EST" and table[1]["time"] == "2026-07-01 08:00:00 EDT"
    assert (table[0]["user"], table[0]["user_id"], table[1]["user"]) == ("Dana Reyes", "u1", "u2")
    assert table[0]["detail"].startswith("'=") and table[1]["outcome"] == ""


def test_the_filter_query_uses_the_indexed_columns() -> None:
    flt = audit.AuditFilter(
        types=("sign_in",), actors=("u1",), outcome="failure", since=AT, until=AT, before=9
    )
    sql = str(flt.statement(100).compile(compile_kwargs={"literal_binds": True}))
    for column in ("type IN", "actor IN", "outcome =", "created_at >=", "created_at <", "idx <", "ORDER BY"):
        assert column in sql
    assert "entry LIKE" not in sql
    assert audit.describe(flt).startswith("type=sign_in user=u1 outcome=failure from=")
    assert audit.describe(audit.AuditFilter()) == "no filter" and audit.AuditFilter().empty


def test_the_component_is_read_from_the_path() -> None:
    assert audit.component_of("/console/cases/x/shares") == Component.console
    assert audit.component_of("/login") == audit.component_of("/logout") == Component.console
    assert audit.component_of("/cases/x/shares") == audit.component_of("/auth/token") == Component.api
