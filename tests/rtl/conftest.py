"""pytest set-up of the RTL benches: the simulator choice and tool markers.

``CODESIGN_SIM=icarus|verilator`` picks the simulator of the tests that take the ``sim`` fixture
(a pytest option would have to live in the root conftest, which this room does not own); those tests get the ``iverilog`` or ``verilator`` marker accordingly, so
``-m "not verilator"`` and friends select by the tool a test really needs. A test whose tool is
not installed is skipped with the install command.
"""

from __future__ import annotations

import pytest

from codesign.rtl.bench.runner import default_simulator, simulator_missing
from codesign.rtl.synth import yosys_missing


def chosen_sim() -> str:
    return default_simulator()


@pytest.fixture(scope="session")
def sim(request: pytest.FixtureRequest) -> str:
    """The simulator the RTL benches run on."""
    return chosen_sim()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marker = "verilator" if chosen_sim() == "verilator" else "iverilog"
    for item in items:
        if "sim" in getattr(item, "fixturenames", ()):
            item.add_marker(getattr(pytest.mark, marker))


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark, reason in (
        ("iverilog", lambda: simulator_missing("icarus")),
        ("verilator", lambda: simulator_missing("verilator")),
        ("yosys", yosys_missing),
    ):
        if item.get_closest_marker(mark) is not None:
            why = reason()
            if why:
                pytest.skip(why)
