"""``make run`` serves where HOST and PORT say, and the demo's summary shows that address."""

import shutil
import subprocess
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from demo.management.commands.seed_demo import site_address


@pytest.mark.parametrize(
    ("host", "port", "address"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000/"),
        ("127.0.0.1", "18600", "http://127.0.0.1:18600/"),
        ("localhost", 18600, "http://localhost:18600/"),
        ("0.0.0.0", 18600, "http://127.0.0.1:18600/"),  # noqa: S104 - every interface: open it on this machine
        ("::1", 18600, "http://[::1]:18600/"),
    ],
)
def test_the_address_shown_is_the_one_served(host, port, address):
    assert site_address(host, port) == address


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_host_and_port_flow_through_the_run_target():
    commands = subprocess.run(
        ["make", "-n", "run", "HOST=localhost", "PORT=18600"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "seed_demo --host localhost --port 18600" in commands
    assert "runserver localhost:18600" in commands
    assert "8000" not in commands


@pytest.mark.django_db
def test_the_demo_summary_names_the_address():
    out = StringIO()
    call_command("seed_demo", host="127.0.0.1", port="18600", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:18600/  login 'operator'" in text
    assert "http://127.0.0.1:18600/admin/" in text and "http://127.0.0.1:18600/api/docs/" in text
    assert ":8000" not in text
