"""A throwaway PostgreSQL on a loopback port, in a temporary folder, for the tests and the
cluster bench: initdb, pg_ctl start (as the `postgres` account when run as root, which
PostgreSQL refuses to run as), trust authentication on 127.0.0.1 only, stopped with
`pg_ctl -m immediate`."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from testkit.local_server import free_port

DATABASE = "callguard"


def binaries() -> Path | None:
    """The folder with initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    return None


@dataclass
class LocalPostgres:
    folder: Path
    port: int
    bin: Path
    owner: str | None  # the account the server runs as, when we are root

    @property
    def url(self) -> str:
        return f"postgresql://{DATABASE}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", self.owner, "--"] if self.owner else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=timeout, cwd=self.folder)

    def start(self) -> LocalPostgres:
        data = self.folder / "pgdata"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", DATABASE, "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.folder / "pg.log"), "-w", "start"
        )
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", DATABASE, DATABASE)
        return self

    def database(self, name: str) -> str:
        """A new, empty database on this server (one per test: a clean call log); its URL."""
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", DATABASE, name)
        return f"postgresql://{DATABASE}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "pgdata"), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass  # not running
        if self.owner:
            shutil.rmtree(self.folder, ignore_errors=True)


def prepare_postgres(folder: Path) -> LocalPostgres | None:
    """None when PostgreSQL is not installed (the caller skips, saying so)."""
    bin_dir = binaries()
    if bin_dir is None:
        return None
    owner = None
    if os.geteuid() == 0:
        # The postgres account must reach its folder, and pytest's own are root's alone:
        # a folder of its own under the system's temp dir, removed by stop().
        owner = "postgres"
        folder = Path(tempfile.mkdtemp(prefix="callguard-pg-"))
        shutil.chown(folder, owner)
    folder.mkdir(parents=True, exist_ok=True)
    return LocalPostgres(folder, free_port(), bin_dir, owner)
