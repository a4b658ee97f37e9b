"""Engines, sessions and column types shared by every domain.

Write transactions serialize on the scope they touch. On PostgreSQL services lock
rows (``SELECT … FOR UPDATE``); on SQLite the write engine opens every transaction
with ``BEGIN IMMEDIATE``, which takes the database's single write lock before the
first read, so a rule never checks a snapshot another writer is about to change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, cast

import psycopg
from psycopg import sql
from sqlalchemy import JSON, DateTime, Engine, Table, create_engine, event, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


COPY_THRESHOLD = 100  # below this, COPY's extra protocol round trips cost more than INSERT


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows in the session's transaction: ``COPY`` for large batches on PostgreSQL,
    ``executemany`` otherwise. Every row has the same keys."""
    if not rows:
        return
    if len(rows) < COPY_THRESHOLD or session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    as_json = {name for name in columns if isinstance(table.c[name].type, JSON)}
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    driver = cast(psycopg.Connection[Any], session.connection().connection.driver_connection)
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([json.dumps(row[c]) if c in as_json else row[c] for c in columns])


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@dataclass(frozen=True)
class Database:
    """A read and a write session factory over one database."""

    url: str
    read_engine: Engine
    write_engine: Engine
    lock_scopes: bool = True

    @classmethod
    def connect(cls, url: str, *, pool: bool = True, lock_scopes: bool = True) -> Database:
        """``lock_scopes=False`` exists only for the concurrency test's negative control."""
        if is_sqlite(url):
            return cls(
                url,
                _sqlite_engine(url, immediate=False),
                _sqlite_engine(url, immediate=lock_scopes),
                lock_scopes,
            )
        options: dict[str, Any] = {"pool_recycle": 1800}
        if not pool:
            options["poolclass"] = NullPool
        else:
            options.update(pool_size=10, max_overflow=20)
        engine = create_engine(url, **options)
        return cls(url, engine, engine, lock_scopes)

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @cached_property
    def _makers(self) -> dict[bool, sessionmaker[Session]]:
        return {
            write: sessionmaker(bind=engine, expire_on_commit=False)
            for write, engine in ((False, self.read_engine), (True, self.write_engine))
        }

    def session(self, *, write: bool) -> Session:
        session = self._makers[write]()
        session.info["lock_scopes"] = self.lock_scopes
        return session

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed if the block ends normally, rolled back otherwise."""
        session = self.session(write=write)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.read_engine.dispose()
        self.write_engine.dispose()
