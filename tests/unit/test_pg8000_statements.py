"""The memoised placeholder rewrite gives exactly what pg8000's own scanner gives."""

from __future__ import annotations

import pg8000.dbapi
import pytest

from shared.adapters.pg8000_statements import _rewritten

STATEMENTS = [
    "SELECT * FROM t WHERE id = %s AND name = %s",
    "UPDATE t SET a = %s WHERE b = 'it''s %s literal' AND c = %s RETURNING *",
    "SELECT $$ %s $$, E'\\\\%s', \"col%s\" FROM t WHERE x = %s -- %s comment\n AND y = %s",
    "INSERT INTO t (a, b) VALUES (%s, %s), (%s, %s)",
    "SELECT 100 %% 7, %s",
]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_the_rewrite_is_pg8000s_own(statement: str) -> None:
    expected, _ = pg8000.dbapi.convert_paramstyle("format", statement, ())
    assert _rewritten(statement) == expected
    assert _rewritten(statement) == expected, "and again, from the memo"
