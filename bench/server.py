"""Serving the app with gunicorn for the benchmark, a keep-alive HTTP client, and memory figures."""

import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database Django is connected to (e.g. the test database)."""
    from urllib.parse import quote

    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{credentials}{host}:{port}/{quote(settings_dict['NAME'])}"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class AppServer:
    """gunicorn (``workers`` sync workers) serving ``bkm.wsgi`` on 127.0.0.1:``port``."""

    def __init__(self, *, port: int, env: dict, workers: int = 2, log_path: Path):
        self.port = port
        self.env = env
        self.workers = workers
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self._peaks: dict[int, int] = {}

    def start(self, timeout: float = 60.0) -> None:
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} is in use; pick another with --port")
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "bkm.wsgi:application",
            "--workers",
            str(self.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "900",
            "--graceful-timeout",
            "10",
            "--log-level",
            "warning",
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            command, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, _ = HttpClient(self.port).request("GET", "/api/v1/")
            except OSError:
                time.sleep(0.2)
                continue
            if status < 500 and len(self.pids()) > self.workers:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def pids(self) -> list[int]:
        """The master and its workers."""
        if self.process is None or self.process.poll() is not None:
            return []
        return [self.process.pid, *children(self.process.pid)]

    def sample_peaks(self) -> None:
        """Remember each process's peak RSS (VmHWM) while it is alive; workers may be recycled."""
        for pid in self.pids():
            peak = peak_rss_kib(pid)
            if peak is not None:
                self._peaks[pid] = max(self._peaks.get(pid, 0), peak)

    def peak_rss(self) -> dict:
        self.sample_peaks()
        peaks = self._peaks
        master = self.process.pid if self.process else None
        workers = [kib for pid, kib in peaks.items() if pid != master]
        return {
            "app_peak_rss_mib": round(sum(peaks.values()) / 1024, 1),
            "app_worker_peak_rss_mib": round(max(workers, default=0) / 1024, 1),
            "app_processes": len(peaks),
        }

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(child) for child in task.read_text().split())
        except (OSError, ValueError):
            continue
    return found


def peak_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def own_peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class HttpClient:
    """One keep-alive connection to the app; reconnects once if the server closed it."""

    def __init__(self, port: int, headers: dict | None = None, timeout: float = 900.0):
        self.port = port
        self.headers = headers or {}
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self.connection

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        all_headers = {**self.headers, **(headers or {})}
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        for attempt in range(2):
            connection = self._connect()
            try:
                connection.request(method, path, body=body, headers=all_headers)
                response = connection.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: bytes | None = None):
        status, data = self.request(method, path, body)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, {"raw": data[:500].decode(errors="replace")}

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
