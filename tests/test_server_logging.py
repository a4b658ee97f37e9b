"""Access logs never hold a link's token or a signed download's signature."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config

from outpost.server import RedactingLogger

TOKEN = "opl_1a2b3c4d_s3cr3t-t0ken"


def test_link_tokens_and_signatures_are_redacted() -> None:
    logger = RedactingLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/l/{TOKEN}/download?x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": f"/l/{TOKEN}/download",
        "QUERY_STRING": "x=1",
        "HTTP_REFERER": f"http://outpost.test/l/{TOKEN}",
    }
    response = SimpleNamespace(status="303 See Other", headers=[], sent=0)
    request = [("Referer", f"http://outpost.test/dl/{TOKEN}")]
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=3))
    logged = " ".join(str(value) for value in atoms.values())
    assert TOKEN not in logged
    assert atoms["r"] == "GET /l/[redacted]/download?x=1 HTTP/1.1"
    assert atoms["f"] == "http://outpost.test/l/[redacted]"
    assert atoms["U"] == "/l/[redacted]/download"


def test_other_paths_are_logged_as_they_are() -> None:
    logger = RedactingLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/sites/sit_1?folder=/l/x",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/sites/sit_1",
    }
    response = SimpleNamespace(status="200 OK", headers=[], sent=10)
    atoms = logger.atoms(response, [], environ, timedelta(milliseconds=3))
    assert atoms["U"] == "/sites/sit_1"


def test_a_credential_in_the_p_parameter_is_redacted() -> None:
    logger = RedactingLogger(Config())
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/api/v1/write?db=x&p={TOKEN}&precision=s",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/api/v1/write",
        "QUERY_STRING": f"db=x&p={TOKEN}&precision=s",
    }
    response = SimpleNamespace(status="204 No Content", headers=[], sent=0)
    atoms = logger.atoms(response, [], environ, timedelta(milliseconds=3))
    assert TOKEN not in " ".join(str(value) for value in atoms.values())
    assert atoms["r"] == "POST /api/v1/write?db=x&p=[redacted]&precision=s HTTP/1.1"
