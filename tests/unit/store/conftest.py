"""Fixtures for the store tests: a real LMDB environment in a temp dir."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.store.env import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "lmdb", map_size=1 << 22)
    try:
        yield s
    finally:
        s.close()
