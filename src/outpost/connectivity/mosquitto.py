"""Mosquitto's view of device credentials: its password file and ACL file.

Devices log in to the broker with their asset id as username and their device secret
as password; the broker checks the secret against the ``$7$`` hash below (the same
format ``mosquitto_passwd`` writes), so it never sees a secret at rest. The ACL lets a
device publish only on its own topic, so the topic names the device for the ingester.

``outpost mosquitto-config`` writes both files from the live credentials in the
database; run it after issuing or revoking credentials (or from cron) and Mosquitto
reloads them on SIGHUP (``--reload-pid``). ``mosquitto.conf``::

    listener 1883
    allow_anonymous false
    password_file /etc/mosquitto/outpost.passwd
    acl_file /etc/mosquitto/outpost.acl
    # keep unacknowledged QoS 1 messages of the ingester's persistent session across
    # broker restarts:
    persistence true
    persistence_location /var/lib/mosquitto/
    # the ingester acknowledges after the durable write; let each device have a few
    # messages in flight:
    max_inflight_messages 20
    max_queued_messages 100000

The files are written with mode 0600 by the user running the command: that user must
be the one Mosquitto reads them as (``mosquitto``), or root.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

#: Mosquitto 2's ``$7$`` password hash: PBKDF2-HMAC-SHA512 over a 12-byte salt, salt and
#: digest base64-encoded. 101 iterations is ``mosquitto_passwd``'s own default; device
#: secrets carry 256 random bits, so the iteration count is not what protects them.
BROKER_HASH_ITERATIONS: Final = 101

#: Where a device publishes its telemetry (``{device}`` is its asset id = its username).
TELEMETRY_TOPIC: Final = "outpost/devices/{device}/telemetry"
#: Where the ingester tells a device why a message of it was refused.
ERRORS_TOPIC: Final = "outpost/devices/{device}/errors"
#: What the ingester subscribes to (under ``$share/<group>/``).
TELEMETRY_FILTER: Final = "outpost/devices/+/telemetry"
ERRORS_FILTER: Final = "outpost/devices/+/errors"
#: Characters a broker username may not contain: ``:`` ends it in the password file,
#: the others would turn the ``%u`` of an ACL pattern into a wildcard or a new level.
_FORBIDDEN_IN_USERNAME: Final = frozenset(":+#/\n\r\x00 ")


def broker_hash(secret: str) -> str:
    """The password-file entry (after ``user:``) that lets ``secret`` log in to Mosquitto."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, BROKER_HASH_ITERATIONS)
    encoded_salt = base64.b64encode(salt).decode()
    return f"$7${BROKER_HASH_ITERATIONS}${encoded_salt}${base64.b64encode(digest).decode()}"


def _check_username(username: str) -> str:
    if not username or _FORBIDDEN_IN_USERNAME & set(username):
        raise ValueError(f"{username!r} cannot be a broker username.")
    return username


def password_file(
    credentials: Iterable[tuple[str, str]], *, ingester_username: str, ingester_password: str
) -> str:
    """Mosquitto's password file: ``<asset id>:<broker hash>`` for each live credential
    (``credentials.live_broker_entries``) and a line for the ingester itself."""
    if not ingester_password:
        raise ValueError("The ingester needs a broker password (OUTPOST_MQTT_PASSWORD).")
    lines = [f"{_check_username(ingester_username)}:{broker_hash(ingester_password)}"]
    for username, hashed in credentials:
        if username == ingester_username:
            raise ValueError(f"A device may not use the ingester's username {username!r}.")
        if not hashed.startswith("$7$") or "\n" in hashed:
            raise ValueError(f"The broker hash of {username!r} is not a $7$ hash.")
        lines.append(f"{_check_username(username)}:{hashed}")
    return "\n".join(lines) + "\n"


def acl_file(ingester_username: str) -> str:
    """Mosquitto's ACL file: a device publishes on its own telemetry topic and reads its
    own errors topic, nothing else; the ingester reads every device's telemetry (also
    through a shared subscription) and writes every device's errors topic."""
    ingester = _check_username(ingester_username)
    telemetry = TELEMETRY_TOPIC.format(device="%u")
    errors = ERRORS_TOPIC.format(device="%u")
    return (
        "# Written by `outpost mosquitto-config`; edits are overwritten.\n"
        "# Every device (username = asset id) publishes on its own topic only.\n"
        f"pattern write {telemetry}\n"
        f"pattern read {errors}\n"
        "\n"
        "# The telemetry ingester.\n"
        f"user {ingester}\n"
        f"topic read {TELEMETRY_FILTER}\n"
        f"topic read $share/+/{TELEMETRY_FILTER}\n"
        f"topic write {ERRORS_FILTER}\n"
    )


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one rename, mode 0600, flushed to disk first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_broker_files(
    entries: Sequence[tuple[str, str]],
    password_path: Path,
    acl_path: Path,
    *,
    ingester_username: str,
    ingester_password: str,
) -> int:
    """Write both files for the live credentials ``entries``
    (``credentials.live_broker_entries``); return how many devices may log in. Nothing
    is written unless both files can be made."""
    passwords = password_file(
        entries, ingester_username=ingester_username, ingester_password=ingester_password
    )
    write_atomically(acl_path, acl_file(ingester_username))
    write_atomically(password_path, passwords)
    return len(entries)


def reload_broker(pid: int, signum: int = signal.SIGHUP) -> None:
    """Ask the Mosquitto process ``pid`` to reread its password and ACL files."""
    os.kill(pid, signum)
