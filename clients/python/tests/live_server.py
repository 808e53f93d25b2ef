"""A real Fabric for the client's tests: ``fabric dev`` from this repository, started once
per test process on free ports (``--port 0 --grpc-port 0``) with a temporary data dir,
and stopped (SIGTERM) when the process exits.

Environment:

* ``FABRIC_TEST_DB=postgres``: the server uses a new database on the local Postgres
  (``FABRIC_TEST_POSTGRES_URL``, default ``postgres://postgres@127.0.0.1:5432/postgres``),
  created with ``psql`` and dropped afterwards; otherwise the embedded PGlite.
* ``FABRIC_DEV_API_KEY``: the key ``fabric dev`` creates (else the one it prints is read).
* ``FABRIC_TEST_GRPC_URL`` with ``FABRIC_TEST_API_KEY``: test a server that is already
  running instead (nothing is started).
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[3]
# Generous: booting compiles the TypeScript and migrates a database on a busy 2-core machine.
BOOT_CEILING_SECONDS = 180.0
STOP_CEILING_SECONDS = 30.0


class LiveFabric:
    """Where the server under test answers: ``grpc_url``, ``api_key``, ``organization_id``."""

    _shared: Optional["LiveFabric"] = None

    def __init__(self) -> None:
        self.grpc_url = ""
        self.api_key = ""
        self.organization_id = ""
        self._process: Optional[subprocess.Popen] = None
        self._output: List[str] = []
        self._dir: Optional[str] = None
        self._database: Optional[str] = None

    @classmethod
    def shared(cls) -> "LiveFabric":
        """The one server of this test process, started on first use."""
        if cls._shared is None:
            server = cls()
            atexit.register(server.stop)
            server.start()
            cls._shared = server
        return cls._shared

    def start(self) -> None:
        external = os.environ.get("FABRIC_TEST_GRPC_URL")
        if external:
            self.grpc_url = external
            self.api_key = os.environ["FABRIC_TEST_API_KEY"]
            return
        self._dir = tempfile.mkdtemp(prefix="fabric-pyclient-")
        env = {**os.environ, "LOG_LEVEL": os.environ.get("LOG_LEVEL", "warn")}
        if os.environ.get("FABRIC_TEST_DB") == "postgres":
            env["DATABASE_URL"] = self._create_database()
        command = ["node", str(REPO_ROOT / "bin" / "fabric.js"), "dev", "--port", "0", "--grpc-port", "0", "--data-dir", str(Path(self._dir) / "data")]
        self._process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        printed = threading.Event()
        threading.Thread(target=self._read_output, args=(printed,), daemon=True).start()
        deadline = time.monotonic() + BOOT_CEILING_SECONDS
        while not printed.wait(0.5):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fabric dev did not start:\n" + "".join(self._output))
        text = "".join(self._output)
        self.grpc_url = _field(text, r"gRPC\s+(http://\S+)")
        self.api_key = _field(text, r"API key\s+(\S+)")
        self.organization_id = _field(text, r"organization\s+(\S+)")

    def _read_output(self, printed: threading.Event) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._output.append(line)
            if line.lstrip().startswith("API key"):
                printed.set()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(STOP_CEILING_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._database is not None:
            _psql(f"DROP DATABASE IF EXISTS {self._database} WITH (FORCE)")
            self._database = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _create_database(self) -> str:
        name = f"fabric_pyclient_{secrets.token_hex(6)}"
        _psql(f"CREATE DATABASE {name}")
        self._database = name
        admin = urlsplit(_admin_url())
        return urlunsplit(admin._replace(path=f"/{name}"))


def _admin_url() -> str:
    return os.environ.get("FABRIC_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def _psql(sql: str) -> None:
    subprocess.run(["psql", _admin_url(), "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, stdin=subprocess.DEVNULL)


def _field(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    if not match:
        raise RuntimeError(f"fabric dev printed no {pattern!r}:\n{text}")
    return match.group(1)
