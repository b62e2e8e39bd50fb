import pytest

from bkm.tests.reliability import figures


def pytest_terminal_summary(terminalreporter):
    if not figures.FIGURES:
        return
    path = figures.write()
    terminalreporter.section("reliability figures")
    for name, value in sorted(figures.FIGURES.items()):
        terminalreporter.write_line(f"{name}: {value}")
    terminalreporter.write_line(f"(written to {path})")


@pytest.fixture
def actor(operator):
    return operator
