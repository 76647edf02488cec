"""A real Orthanc server with its DICOMweb plugin, for tests.

The server runs as a child process on a free port of 127.0.0.1 with its
storage in a temporary folder; remote access is disallowed and HTTP basic
authentication is optional.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import requests

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def orthanc_binary() -> str | None:
    """Path of the Orthanc executable, if installed."""
    return shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None
    )


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OrthancServer:
    """An Orthanc server started for the tests.

    Parameters
    ----------
    folder: pathlib.Path
        Folder for its configuration, storage and log
    credentials: Union[Tuple[str, str], None], optional
        User name and password for HTTP basic authentication

    """

    def __init__(
        self, folder: Path, credentials: tuple[str, str] | None = None
    ) -> None:
        self.folder = folder
        self.credentials = credentials
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """str: the server's root URL"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        """str: the DICOMweb root"""
        return f"{self.base_url}/dicom-web"

    def _configuration(self) -> dict:
        config = {
            "Name": "dicomslide-tests",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"),
            "HttpPort": self.port,
            "DicomServerEnabled": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": self.credentials is not None,
            "RegisteredUsers": dict([self.credentials]) if self.credentials else {},
            "HttpThreadsCount": 8,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
        }
        return config

    def start(self) -> None:
        """Start the server and wait until it answers."""
        binary = orthanc_binary()
        if binary is None:
            raise RuntimeError("Orthanc is not installed")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "orthanc.json"
        config.write_text(json.dumps(self._configuration()))
        log = open(self.folder / "orthanc.log", "wb")  # noqa: SIM115 (kept open)
        self.process = subprocess.Popen(
            [binary, str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=self.folder
        )
        session = self.session()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "Orthanc exited: "
                    + (self.folder / "orthanc.log").read_text()[-2000:]
                )
            with contextlib.suppress(requests.ConnectionError):
                if session.get(f"{self.base_url}/system", timeout=1).ok:
                    return
            time.sleep(0.05)
        raise RuntimeError("Orthanc did not answer within 20 s")

    def stop(self) -> None:
        """Stop the server by its process id."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Kill the server abruptly (for fault tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def session(self) -> requests.Session:
        """A session with the server's credentials."""
        session = requests.Session()
        if self.credentials:
            session.auth = self.credentials
        return session

    def upload(self, paths: Iterable[Path]) -> int:
        """Store files (POST /instances); returns how many were stored."""
        session = self.session()
        count = 0
        for path in paths:
            response = session.post(
                f"{self.base_url}/instances", data=path.read_bytes()
            )
            response.raise_for_status()
            count += 1
        return count

    def clear(self) -> None:
        """Delete every stored study."""
        session = self.session()
        for study in session.get(f"{self.base_url}/studies").json():
            session.delete(f"{self.base_url}/studies/{study}").raise_for_status()


@contextlib.contextmanager
def running_orthanc(
    folder: Path, credentials: tuple[str, str] | None = None
) -> Iterator[OrthancServer]:
    """Run an Orthanc server for the duration of a block."""
    server = OrthancServer(folder, credentials)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def dicom_files(folder: Path) -> list[Path]:
    """Part 10 files below a folder."""
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fp:
                if fp.read(132)[128:] == b"DICM":
                    files.append(path)
    return files
