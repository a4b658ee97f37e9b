"""Settings read from ``OUTPOST_*`` environment variables, the same for every process."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Self

ENV_PREFIX = "OUTPOST_"
GIB = 1024**3
#: Content types a file may have unless ``OUTPOST_FILE_TYPES`` says otherwise: documents,
#: images, text and archives. Executables and HTML are refused (see ``files/sniff.py``).
DEFAULT_FILE_TYPES = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/tiff",
        "text/plain",
        "text/csv",
        "application/json",
        "application/zip",
        "application/gzip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""
    secret_key: str = ""
    environment: str = "development"
    cookie_secure: bool = False
    max_body_bytes: int = 8 * 1024 * 1024
    session_idle_minutes: int = 60
    session_lifetime_hours: int = 12
    scope_locking: bool = True
    file_store: str = "local"
    files_dir: Path | None = None
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_bucket: str = "outpost-files"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_server_side_encryption: str = ""
    file_max_bytes: int = 5 * GIB
    file_quota_bytes: int = 100 * GIB
    file_retention_days: int = 30
    file_types: frozenset[str] = DEFAULT_FILE_TYPES
    link_max_hours: int = 7 * 24
    token_max_days: int = 90
    embedded_worker: bool = True
    telemetry_store: str = "sqlite"
    telemetry_file: Path | None = None
    telemetry_queue_points: int = 200_000
    telemetry_max_batch_points: int = 50_000
    influx_url: str = "http://127.0.0.1:8086"
    influx_database: str = "outpost"
    influx_username: str = ""
    influx_password: str = ""
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = "outpost-ingester"
    mqtt_password: str = ""
    mqtt_group: str = "outpost"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Self:
        env = dict(os.environ if environ is None else environ)

        def get(name: str, default: str = "") -> str:
            return env.get(ENV_PREFIX + name, default)

        def flag(name: str, default: str) -> bool:
            return get(name, default).lower() in {"1", "true", "yes"}

        data_dir = Path(get("DATA_DIR", "var"))
        file_types = get("FILE_TYPES")
        return cls(
            data_dir=data_dir,
            database_url=get("DATABASE_URL"),
            secret_key=get("SECRET_KEY"),
            environment=get("ENV", "development"),
            cookie_secure=flag("COOKIE_SECURE", "false"),
            max_body_bytes=int(get("MAX_BODY_BYTES", str(8 * 1024 * 1024))),
            session_idle_minutes=int(get("SESSION_IDLE_MINUTES", "60")),
            session_lifetime_hours=int(get("SESSION_LIFETIME_HOURS", "12")),
            scope_locking=get("UNSAFE_SCOPE_LOCKING", "true").lower() not in {"0", "false", "no"},
            file_store=get("FILE_STORE", "local"),
            files_dir=Path(get("FILES_DIR")) if get("FILES_DIR") else None,
            s3_endpoint_url=get("S3_ENDPOINT_URL"),
            s3_region=get("S3_REGION", "us-east-1"),
            s3_bucket=get("S3_BUCKET", "outpost-files"),
            s3_access_key_id=get("S3_ACCESS_KEY_ID"),
            s3_secret_access_key=get("S3_SECRET_ACCESS_KEY"),
            s3_server_side_encryption=get("S3_SERVER_SIDE_ENCRYPTION"),
            file_max_bytes=int(get("FILE_MAX_BYTES", str(5 * GIB))),
            file_quota_bytes=int(get("FILE_QUOTA_BYTES", str(100 * GIB))),
            file_retention_days=int(get("FILE_RETENTION_DAYS", "30")),
            file_types=(
                frozenset(t.strip() for t in file_types.split(",") if t.strip())
                if file_types
                else DEFAULT_FILE_TYPES
            ),
            link_max_hours=int(get("LINK_MAX_HOURS", str(7 * 24))),
            token_max_days=int(get("TOKEN_MAX_DAYS", "90")),
            embedded_worker=flag("EMBEDDED_WORKER", "true"),
            telemetry_store=get("TELEMETRY_STORE", "sqlite"),
            telemetry_file=Path(get("TELEMETRY_FILE")) if get("TELEMETRY_FILE") else None,
            telemetry_queue_points=int(get("TELEMETRY_QUEUE_POINTS", "200000")),
            telemetry_max_batch_points=int(get("TELEMETRY_MAX_BATCH_POINTS", "50000")),
            influx_url=get("INFLUX_URL", "http://127.0.0.1:8086"),
            influx_database=get("INFLUX_DATABASE", "outpost"),
            influx_username=get("INFLUX_USERNAME"),
            influx_password=get("INFLUX_PASSWORD"),
            mqtt_host=get("MQTT_HOST", "127.0.0.1"),
            mqtt_port=int(get("MQTT_PORT", "1883")),
            mqtt_username=get("MQTT_USERNAME", "outpost-ingester"),
            mqtt_password=get("MQTT_PASSWORD"),
            mqtt_group=get("MQTT_GROUP", "outpost"),
        ).resolved()

    def resolved(self) -> Self:
        """Fill the embedded defaults: a SQLite file and a persisted secret under ``data_dir``."""
        database_url = self.database_url or f"sqlite:///{(self.data_dir / 'outpost.db').resolve()}"
        secret_key = self.secret_key or _persisted_secret(self.data_dir)
        return replace(self, database_url=database_url, secret_key=secret_key)

    @property
    def files_path(self) -> Path:
        """Where the local blob store keeps file contents (default ``data_dir/files``)."""
        return self.files_dir or self.data_dir / "files"

    @property
    def telemetry_path(self) -> Path:
        """The embedded telemetry store's SQLite file (default ``data_dir/telemetry.db``)."""
        return self.telemetry_file or self.data_dir / "telemetry.db"

    @property
    def link_max_lifetime(self) -> timedelta:
        return timedelta(hours=self.link_max_hours)

    @property
    def token_max_lifetime(self) -> timedelta:
        return timedelta(days=self.token_max_days)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


def _persisted_secret(data_dir: Path) -> str:
    """A random secret kept in ``data_dir/secret_key`` so sessions survive restarts."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
