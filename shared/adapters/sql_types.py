"""The column types whose storage differs by dialect (PostgreSQL, SQLite, MySQL), read back the same everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, TypeDecorator, Uuid
from sqlalchemy.dialects.postgresql import JSONB

NAIVE_DIALECTS = ("sqlite", "mysql")  # their time types keep no zone: the broker writes UTC there


class UTCDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; on SQLite (which drops tzinfo) and MySQL (DATETIME(6): no zone, to the
    microsecond) stored as UTC and read back as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            from sqlalchemy.dialects.mysql import DATETIME  # here: PostgreSQL's cold starts need not import it

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the broker stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name in NAIVE_DIALECTS else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDoc = JSON().with_variant(JSONB(), "postgresql")
# On MySQL CHAR(32) hex (MySQL has no UUID type; MariaDB's own sorts unlike the bytes, as PostgreSQL's does not).
PortableUuid = Uuid().with_variant(Uuid(native_uuid=False), "mysql")
AutoId = BigInteger().with_variant(Integer(), "sqlite")
