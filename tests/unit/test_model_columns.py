"""UTC-aware datetimes on every database (SQLite stores no offset)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.dialects import sqlite

from app.models.columns import UTCDateTime

DIALECT = sqlite.dialect()


def test_aware_datetimes_are_stored_in_utc_and_read_back_aware():
    column = UTCDateTime()
    paris = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    stored = column.process_bind_param(paris, DIALECT)
    assert stored == paris
    assert stored is not None
    assert stored.tzinfo == dt.UTC
    read = column.process_result_value(stored.replace(tzinfo=None), DIALECT)
    assert read == dt.datetime(2026, 11, 26, 8, 30, tzinfo=dt.UTC)
    assert column.process_bind_param(None, DIALECT) is None
    assert column.process_result_value(None, DIALECT) is None


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive datetime"):
        UTCDateTime().process_bind_param(dt.datetime(2026, 11, 26, 9, 30), DIALECT)
