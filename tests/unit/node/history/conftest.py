import pytest
from helpers.history_driver import Run

from shoal.node.history.engine import HistoryConfig, HistoryEngine


@pytest.fixture
def engine() -> HistoryEngine:
    return HistoryEngine(HistoryConfig())


@pytest.fixture
def run(engine: HistoryEngine) -> Run:
    return Run(engine)
