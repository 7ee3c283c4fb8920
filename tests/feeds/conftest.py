"""Shared fixtures: a real fake-EODHD server on loopback and clients that never really sleep."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sidecar.feeds.eodhd import EodhdClient
from sidecar.testing.fake_eodhd import FakeEodhd


@pytest.fixture
def fake() -> Iterator[FakeEodhd]:
    with FakeEodhd() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    """Delays the client asked for; the injected sleep records instead of sleeping."""
    return []


@pytest.fixture
def make_client(fake: FakeEodhd, sleeps: list[float]) -> Iterator[Callable[..., EodhdClient]]:
    made: list[EodhdClient] = []

    def make(**kw: Any) -> EodhdClient:
        kw.setdefault("api_token", fake.token)
        kw.setdefault("base_url", fake.base_url)
        kw.setdefault("sleep", sleeps.append)
        kw.setdefault("rng", random.Random(7))
        kw.setdefault("timeout", (2.0, 5.0))
        c = EodhdClient(**kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(make_client: Callable[..., EodhdClient]) -> EodhdClient:
    return make_client()
