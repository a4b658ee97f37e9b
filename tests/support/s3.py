"""Run moto's standalone S3 server on loopback, a real HTTP endpoint for S3 tests.

The server is a subprocess (``python -m moto.server``) of this interpreter, so the
client under test talks HTTP to a separate process exactly as it would to MinIO or AWS:
nothing is patched in the test process. It keeps everything in memory and forgets it
when it stops.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from outpost.settings import Settings
from support.server import free_port, stop, wait_until_ready

#: Credentials moto accepts (it checks none); real ones must never reach a test.
ACCESS_KEY_ID = "test"
SECRET_ACCESS_KEY = "test"
REGION = "us-east-1"


def s3_test_settings(
    endpoint: str, data_dir: Path, *, server_side_encryption: str = ""
) -> Settings:
    """Settings for an S3 blob store on ``endpoint``, with a fresh bucket name of its own."""
    return Settings(
        data_dir=data_dir,
        file_store="s3",
        s3_endpoint_url=endpoint,
        s3_region=REGION,
        s3_bucket=f"outpost-test-{uuid.uuid4().hex[:16]}",
        s3_access_key_id=ACCESS_KEY_ID,
        s3_secret_access_key=SECRET_ACCESS_KEY,
        s3_server_side_encryption=server_side_encryption,
    )


def _answers(host: str, port: int) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/moto-api/")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _tail(log: IO[bytes], lines: int = 40) -> str:
    log.seek(0)
    return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:])


@contextmanager
def running_s3_server() -> Iterator[str]:
    """Start moto's S3 server on a free loopback port, yield its endpoint URL, stop it on exit."""
    host, port = "127.0.0.1", free_port()
    command = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_ready(
                process, lambda: _answers(host, port), "moto.server", lambda: _tail(log)
            )
            yield f"http://{host}:{port}"
        finally:
            stop(process)
