"""The tables' common machinery: one MetaData with the naming convention the migrations use, and `Rows`, a Core
table whose columns read as class attributes (shared/adapters/orm.py and orm_events.py define the tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Column, MetaData, Table

from shared.adapters.sql_types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}


class _TableClass(type):
    __table__: Table

    def __getattr__(cls, name: str) -> Column[Any]:  # for the type checker: columns are class attributes already
        raise AttributeError(f"table {cls.__table__.name} has no column {name!r}")


class Rows(metaclass=_TableClass):
    """A Core table (`__table__`) whose columns read as class attributes, standing for the table wherever
    SQLAlchemy takes one."""

    __table__: ClassVar[Table]

    def __init_subclass__(cls) -> None:
        for column in cls.__table__.c:
            setattr(cls, column.key, column)

    @classmethod
    def __clause_element__(cls) -> Table:
        return cls.__table__


metadata = MetaData(naming_convention=NAMING)


class Base:
    """The tables' metadata, where Alembic (migrations/env.py) and the schema test look for it."""

    metadata = metadata


def ts(name: str, *, nullable: bool = True, **kw: Any) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable, **kw)
