"""Schema and index checks on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import custody.models  # noqa: F401
from custody.agencies import PROGRAM_AGENCIES
from custody.db import create_db_engine, migrate
from custody.geo import bounding_box


def test_migrations_match_the_models_and_seed_agencies(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate(engine)
    migrate(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        codes = {r[0] for r in conn.execute(sa.text("SELECT code FROM agencies"))}
    assert {c for c, _ in PROGRAM_AGENCIES} <= codes
    engine.dispose()


def test_radius_search_uses_the_cell_index(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate(engine)
    box = bounding_box(38.9, -77.03, 500)
    cells = ",".join(str(c) for c in box.cells())
    where = (
        f"lat_cell IN ({cells}) AND lon BETWEEN {box.min_lon} AND {box.max_lon} "
        f"AND lat BETWEEN {box.min_lat} AND {box.max_lat}"
    )
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = " ".join(
                str(r)
                for r in conn.execute(sa.text(f"EXPLAIN QUERY PLAN SELECT id FROM cameras WHERE {where}"))
            )
        else:
            conn.execute(sa.text("SET enable_seqscan = off"))
            plan = " ".join(
                str(r[0]) for r in conn.execute(sa.text(f"EXPLAIN SELECT id FROM cameras WHERE {where}"))
            )
    assert "ix_cameras_cell_lon" in plan, plan
    engine.dispose()
