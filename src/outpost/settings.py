"""Settings read from ``OUTPOST_*`` environment variables, the same for every process."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self

ENV_PREFIX = "OUTPOST_"


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

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Self:
        env = dict(os.environ if environ is None else environ)

        def get(name: str, default: str = "") -> str:
            return env.get(ENV_PREFIX + name, default)

        data_dir = Path(get("DATA_DIR", "var"))
        return cls(
            data_dir=data_dir,
            database_url=get("DATABASE_URL"),
            secret_key=get("SECRET_KEY"),
            environment=get("ENV", "development"),
            cookie_secure=get("COOKIE_SECURE", "false").lower() in {"1", "true", "yes"},
            max_body_bytes=int(get("MAX_BODY_BYTES", str(8 * 1024 * 1024))),
            session_idle_minutes=int(get("SESSION_IDLE_MINUTES", "60")),
            session_lifetime_hours=int(get("SESSION_LIFETIME_HOURS", "12")),
            scope_locking=get("UNSAFE_SCOPE_LOCKING", "true").lower() not in {"0", "false", "no"},
        ).resolved()

    def resolved(self) -> Self:
        """Fill the embedded defaults: a SQLite file and a persisted secret under ``data_dir``."""
        database_url = self.database_url or f"sqlite:///{(self.data_dir / 'outpost.db').resolve()}"
        secret_key = self.secret_key or _persisted_secret(self.data_dir)
        return replace(self, database_url=database_url, secret_key=secret_key)

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
