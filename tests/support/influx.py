"""A real InfluxDB 1.x on loopback for the telemetry store's tests.

``influx_url`` (session scope) is ``OUTPOST_TEST_INFLUX_URL`` when that is set (an
InfluxDB someone else runs, e.g. 1.8 or 2.x's v1 compatibility API); otherwise this
plugin starts ``influxd`` from the PATH with a generated configuration: meta, data and
WAL under a temporary directory, HTTP and RPC on free loopback ports, no usage
reporting, quiet logs. It is stopped at the end of the session. Without ``influxd`` the
tests that need it are skipped, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.server import free_port, stop, wait_until_ready

ENV_URL = "OUTPOST_TEST_INFLUX_URL"

_CONFIG = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false

[retention]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""


def _pings(host: str, port: int) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/ping")
        response = connection.getresponse()
        response.read()
        return response.status == 204
    except OSError:
        return False
    finally:
        connection.close()


@contextmanager
def running_influxd(influxd: str) -> Iterator[str]:
    """Start ``influxd`` on free loopback ports, yield its URL, stop it on exit."""
    host, http_port, rpc_port = "127.0.0.1", free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="outpost-influxd-") as root:
        config = Path(root) / "influxdb.conf"
        config.write_text(_CONFIG.format(root=root, http_port=http_port, rpc_port=rpc_port))
        log_path = Path(root) / "influxd.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [influxd, "-config", str(config)], stdout=log, stderr=subprocess.STDOUT
            )

        def tail() -> str:
            lines = log_path.read_text(errors="replace").splitlines()
            return "\n".join(lines[-40:])

        try:
            wait_until_ready(process, lambda: _pings(host, http_port), "influxd", tail)
            yield f"http://{host}:{http_port}"
        finally:
            stop(process)


@pytest.fixture(scope="session")
def influx_url() -> Iterator[str]:
    """The base URL of a running InfluxDB speaking the v1 HTTP API."""
    configured = os.environ.get(ENV_URL)
    if configured:
        yield configured.rstrip("/")
        return
    influxd = shutil.which("influxd")
    if influxd is None:
        reason = f"influxd is not installed (apt-get install influxdb) and {ENV_URL} is not set"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the InfluxDB tests: {reason}")
        pytest.skip(reason)
    with running_influxd(influxd) as url:
        yield url
