"""Fault suites: shared fixtures and the end-of-run summary table.

Every fault test is marked ``@pytest.mark.fault("<fault>")``. A test counts as
one case unless it reports more (a Hypothesis test reports the examples it
ran), and it reports the records it found missing in the database through the
``fault`` fixture *before* asserting, so a failing test still shows its loss.
At the end of the run ``pytest_terminal_summary`` prints, per fault: cases,
cases survived, records lost, all taken from the test reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from helpers import server_settings

from ivr.config import Settings

CASES = "fault_cases"
LOST = "fault_records_lost"
FAULT = "fault"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(name): a fault-injection test, counted in the fault summary table")
    config.pluginmanager.register(FaultLedger(), "fault-ledger")


class FaultOutcome:
    """What a fault test reports for the summary table; written to the test's
    report at teardown, so a failing test still reports what it counted."""

    def __init__(self) -> None:
        self.case_count = 0
        self.lost_count = 0

    def cases(self, count: int = 1) -> None:
        self.case_count += count

    def lost(self, count: int) -> None:
        self.lost_count += count


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> Iterator[FaultOutcome]:
    outcome = FaultOutcome()
    yield outcome
    request.node.user_properties += [(CASES, outcome.case_count), (LOST, outcome.lost_count)]


@pytest.fixture(autouse=True)
def _label_fault(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("fault")
    if marker is not None:
        request.node.user_properties.append((FAULT, marker.args[0]))


@dataclass
class Row:
    cases: int = 0
    survived: int = 0
    lost: int = 0


class FaultLedger:
    """Collects fault-test reports; one row per fault in the summary."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = (yield).get_result()
        state = item.stash.setdefault(_STATE, set())
        if report.failed:
            state.add("failed")
        if report.skipped:
            state.add("skipped")
        if report.when != "teardown" or ("skipped" in state and "failed" not in state):
            return
        properties = item.user_properties
        name = dict(properties).get(FAULT)
        if name is None:
            return
        cases = sum(value for key, value in properties if key == CASES) or 1
        row = self.rows.setdefault(name, Row())
        row.cases += cases
        row.lost += sum(value for key, value in properties if key == LOST)
        if "failed" not in state:
            row.survived += cases

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        terminalreporter.section("fault suites")
        width = max(len(name) for name in self.rows) + 2
        terminalreporter.write_line(f"{'fault':<{width}}{'cases':>9}{'survived':>10}{'records lost':>14}")
        for name, row in sorted(self.rows.items()):
            terminalreporter.write_line(f"{name:<{width}}{row.cases:>9}{row.survived:>10}{row.lost:>14}")


_STATE = pytest.StashKey[set[str]]()


# -- a runtime shared by a module's many calls -------------------------------------------


@pytest.fixture(scope="module")
def module_settings(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory, shared_recordings: Path
) -> Settings:
    return server_settings(tmp_path_factory.mktemp("fault-data"), module_database_url, shared_recordings)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_runtime(module_settings: Settings) -> AsyncIterator[Any]:
    from ivr.app import running

    async with running(module_settings, migrate=False) as runtime:
        yield runtime
