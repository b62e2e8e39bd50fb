"""The figures the reliability suite reports (examples run, clients, faults, inputs, checks).

Tests add to ``FIGURES``; the package's conftest prints them at the end of the session and writes
``test-output/reliability.json``.
"""

import json
from pathlib import Path

FIGURES: dict[str, int] = {}
OUTPUT = Path(__file__).resolve().parents[3] / "test-output" / "reliability.json"


def add(name: str, amount: int = 1) -> None:
    FIGURES[name] = FIGURES.get(name, 0) + amount


def put(name: str, value) -> None:
    FIGURES[name] = value


def write() -> Path | None:
    if not FIGURES:
        return None
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    previous = {}
    if OUTPUT.exists():
        try:
            previous = json.loads(OUTPUT.read_text())
        except ValueError:
            previous = {}
    # A partial run (one file) updates its own figures and keeps the others'.
    OUTPUT.write_text(json.dumps({**previous, **FIGURES}, indent=2, sort_keys=True, default=str) + "\n")
    return OUTPUT
