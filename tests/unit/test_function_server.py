"""`broker function` keeps the cyclic collector off from start-up to the first answer, and on after it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.function_server import create_function_app


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.disable()  # as `broker function` starts
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def test_the_collector_starts_after_the_first_answer_that_is_not_a_probe(collector_off):
    app = create_function_app("hello", "tests/bench/hello_function.py")
    client = app.test_client()
    assert client.get("/health").status_code == 200
    assert not gc.isenabled(), "a probe is not the first request"
    assert client.get("/").status_code == 200
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0, "what start-up made is frozen, never scanned"
