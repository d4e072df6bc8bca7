"""Column types shared by every model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, Table, create_engine, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.base import DATETIME
from sqlalchemy.exc import StatementError

from enclave_api.models import UTCDateTime

zones = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC) | zones
)


@given(moments)
def test_sqlite_text_is_sqlalchemys_datetime_format_in_utc(moment: datetime) -> None:
    """The one-step SQLite writer stores exactly what SQLAlchemy's DATETIME would store for the
    same instant in UTC, so old rows and new parameters compare as text."""
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    reference = DATETIME().bind_processor(dialect)
    assert ours is not None and reference is not None
    assert ours(moment) == reference(moment.astimezone(UTC))


def test_round_trip_through_sqlite_keeps_the_instant_in_utc() -> None:
    engine = create_engine("sqlite://")
    table = Table("moments", MetaData(), Column("at", UTCDateTime()))
    table.create(engine)
    seoul = datetime(2026, 11, 25, 15, 30, 0, 123456, tzinfo=timezone(timedelta(hours=9)))
    with engine.begin() as connection:
        connection.execute(insert(table), [{"at": seoul}, {"at": None}])
        stored = connection.execute(select(table.c.at)).scalars().all()
        later = connection.execute(select(table.c.at).where(table.c.at > seoul - timedelta(seconds=1)))
        assert later.scalars().all() == [seoul]
    assert stored == [seoul, None]
    assert stored[0] is not None and stored[0].tzinfo is UTC
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as connection:
        connection.execute(insert(table), {"at": datetime(2026, 11, 25, 6, 0)})
