"""The pure retention rules (custody/retention.py) and their settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custody import retention as rules
from custody.settings import Settings

CLASSES = {"homicide": 27394, "sexual-assault": 18262, "petty": 30}
T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def test_class_lookup_by_category_else_the_default() -> None:
    assert rules.retention_days("homicide", classes=CLASSES, default_days=365) == 27394
    assert rules.retention_days("  Homicide ", classes=CLASSES, default_days=365) == 27394
    assert rules.retention_days("burglary", classes=CLASSES, default_days=365) == 365
    assert rules.retention_days(None, classes=CLASSES, default_days=365) == 365
    assert rules.retention_days("", classes=CLASSES, default_days=365) == 365


def test_a_class_shorter_than_the_default_never_lowers_it() -> None:
    assert rules.retention_days("petty", classes=CLASSES, default_days=365) == 365


def test_retain_until_counts_days_and_rounds_up_to_the_second() -> None:
    assert rules.retain_until(T0, days=365) == T0 + timedelta(days=365)
    assert rules.retain_until(T0, days=3, day_s=1) == T0 + timedelta(seconds=3)
    odd = T0 + timedelta(microseconds=250_000)
    assert rules.retain_until(odd, days=3, day_s=1) == T0 + timedelta(seconds=4), "never shorter"


def test_never_shorten() -> None:
    later = T0 + timedelta(days=10)
    assert rules.extended(None, T0) == T0
    assert rules.extended(T0, later) == later
    assert rules.extended(later, T0) is None, "a shorter class changes nothing"
    assert rules.extended(later, later) is None


def test_disposable_only_past_retention_and_without_a_hold() -> None:
    assert rules.disposable(retain=T0, legal_hold=False, now=T0 + timedelta(seconds=1))
    assert not rules.disposable(retain=T0, legal_hold=True, now=T0 + timedelta(days=1))
    assert not rules.disposable(retain=T0 + timedelta(seconds=1), legal_hold=False, now=T0)
    assert not rules.disposable(retain=None, legal_hold=False, now=T0)


def test_retention_classes_setting_parses_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUSTODY_RETENTION_CLASSES", '{"Homicide": 27394}')
    assert Settings(home=tmp_path).retention_classes == {"homicide": 27394}
    monkeypatch.setenv("CUSTODY_RETENTION_CLASSES", '{"homicide": 0}')
    with pytest.raises(ValueError, match="CUSTODY_RETENTION_CLASSES"):
        Settings(home=tmp_path)


def test_a_short_retention_day_is_refused_in_production(tmp_path: Path) -> None:
    assert Settings(home=tmp_path, mode="test", retention_day_s=1).retention_day_s == 1
    with pytest.raises(ValueError, match="CUSTODY_RETENTION_DAY_S"):
        Settings(home=tmp_path, mode="production", retention_day_s=1)


def test_a_longer_class_adds_only_the_difference() -> None:
    held = T0 + timedelta(days=365)
    longer = rules.lengthened(held, had_days=365, days=27394, day_s=rules.DAY_S, stored_at=T0)
    assert longer == T0 + timedelta(days=27394)
    same = rules.lengthened(
        held, had_days=365, days=365, day_s=rules.DAY_S, stored_at=T0 + timedelta(hours=1)
    )
    assert rules.extended(held, same) is None, "the same class again changes nothing"
    shorter = rules.lengthened(held, had_days=365, days=30, day_s=rules.DAY_S, stored_at=T0)
    assert rules.extended(held, shorter) is None
    unknown = rules.lengthened(None, had_days=None, days=10, day_s=1, stored_at=T0)
    assert unknown == T0 + timedelta(seconds=10)


def test_due_proposes_only_past_the_current_class_and_never_a_held_file(tmp_path: Path) -> None:
    """The disposition round's selection (custody/services/retention.py) on a throwaway database: a
    file past its retention is proposed, one on hold is not, and one whose case's class grew since it
    was stored (a category changed while it was arriving) is extended instead of proposed."""
    import sqlalchemy as sa
    from sqlmodel import Session, SQLModel

    from custody.models import Case, Evidence
    from custody.services import retention

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    SQLModel.metadata.create_all(engine)
    settings = Settings(home=tmp_path, mode="test", retention_day_s=1, evidence_retention_days=2,
                        retention_classes={"homicide": 10})  # fmt: skip
    past = datetime.now(UTC) - timedelta(seconds=5)
    with Session(engine) as session:
        plain = Case(title="a", agency="MPD", created_by="u")
        grown = Case(title="b", agency="MPD", created_by="u", category="homicide")
        session.add_all([plain, grown])
        session.flush()

        def file(case: Case, hold: bool = False) -> Evidence:
            return Evidence(request_id="r", case_id=case.id, camera_id="c", filename="f", object_key="k",
                            size=1, sha256="0" * 64, content_type="video/mp4", retain_until=past,
                            retention_days=2, legal_hold=hold)  # fmt: skip

        due, held, late = file(plain), file(plain, hold=True), file(grown)
        session.add_all([due, held, late])
        session.flush()
        marked, longer = retention.due(session=session, settings=settings)
        assert marked == 1 and due.disposition == "pending"
        assert held.disposition is None and late.disposition is None
        assert [(x.evidence_id, x.until, x.days) for x in longer] == [
            (late.id, past + timedelta(seconds=8), 10)
        ]
