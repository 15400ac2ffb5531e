"""A throwaway PostgreSQL server for tests: Debian's binaries, a data folder in a fresh temp dir, 127.0.0.1 on a
free port (and a unix socket in the same dir), password authentication over TCP, stopped and deleted afterwards.

The server refuses to run as root, and CI runs as root: then every server command runs as the ``postgres`` user
(``runuser -u postgres --``) and the temp dir is handed to that user. Any other user runs it as itself.
:func:`server_unavailable` says why a server cannot start here (None when it can).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"  # Debian's account for the server
START_TIMEOUT_S = 30


def pg_bin_dir() -> Path | None:
    """The newest installed major version's binaries (Debian layout), or None."""
    found = [Path(p) for p in glob.glob(PG_BIN_GLOB) if (Path(p) / "initdb").is_file() and (Path(p) / "pg_ctl").is_file()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0) if found else None


def _run_as() -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []


def server_unavailable() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None."""
    if pg_bin_dir() is None:
        return f"PostgreSQL server binaries not found ({PG_BIN_GLOB}/initdb, pg_ctl): apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run the server as (it refuses root)"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing: cannot run the server as the postgres user"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """A running server: connect to ``host``:``port`` as ``user``/``password``, database ``db_name``."""

    root: Path
    port: int
    user: str
    password: str
    db_name: str
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def env(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables config/dagster-postgres.yaml reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": self.user,
                "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_DB": self.db_name}

    def connect(self):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname=self.db_name, connect_timeout=10)

    def _server_command(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([*_run_as(), *args], capture_output=True, text=True, timeout=START_TIMEOUT_S + 30)
        if result.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.is_file() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-2000:]}\n{log}")
        return result

    def start(self) -> None:
        bin_dir = pg_bin_dir()
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:  # hand the whole dir to the server's user (the password file included)
            account = pwd.getpwnam(SERVER_USER)
            for path in (self.root, password_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._server_command(str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                             f"--pwfile={password_file}", "--auth-local=trust", "--auth-host=scram-sha-256",
                             "--encoding=UTF8", "--no-sync")
        password_file.unlink()
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._server_command(str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path), "-w",
                             "-t", str(START_TIMEOUT_S), "-o", options, "start")
        self._server_command(str(bin_dir / "createdb"), "-h", str(self.root), "-p", str(self.port), "-U",
                             self.user, self.db_name)

    def stop(self) -> None:
        bin_dir = pg_bin_dir()
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run([*_run_as(), str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                            "-t", str(START_TIMEOUT_S), "stop"], capture_output=True, timeout=START_TIMEOUT_S + 30)


def start_server(db_name: str = "lpd_dagster") -> PostgresServer:
    """Start a fresh server (call :func:`server_unavailable` first); stop it with :func:`stop_server`."""
    root = Path(tempfile.mkdtemp(prefix="lpd-postgres-"))  # directly under /tmp: the server's user can reach it
    server = PostgresServer(root=root, port=_free_port(), user="lpd", password=secrets.token_urlsafe(16),
                            db_name=db_name)
    try:
        server.start()
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: PostgresServer) -> None:
    try:
        server.stop()
    finally:
        shutil.rmtree(server.root, ignore_errors=True)
