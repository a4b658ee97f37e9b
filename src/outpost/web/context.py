"""Per-app services and per-request state, behind typed accessors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session

from outpost.connectivity.credentials import Device
from outpost.db import Database
from outpost.errors import BadRequest, Unauthenticated
from outpost.files.storage import BlobStore
from outpost.identity.principal import Actor, Principal, RequestMeta
from outpost.settings import Settings
from outpost.telemetry.store import TelemetryStore, open_telemetry_store

EXTENSION = "outpost"
REASON_MAX = 1000


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    blobs: BlobStore
    #: Opened on first use (the SQLite store starts a writer thread).
    telemetry_slot: list[TelemetryStore] = field(default_factory=list)

    @property
    def telemetry(self) -> TelemetryStore:
        if not self.telemetry_slot:
            with _TELEMETRY_LOCK:
                if not self.telemetry_slot:
                    self.telemetry_slot.append(open_telemetry_store(self.settings))
        return self.telemetry_slot[0]


_TELEMETRY_LOCK = threading.Lock()


def init_app(app: Flask, services: Services) -> None:
    app.extensions[EXTENSION] = services
    app.teardown_request(_close_session)


def services() -> Services:
    found: Services = current_app.extensions[EXTENSION]
    return found


def principal() -> Principal:
    found: Principal | None = getattr(g, "principal", None)
    if found is None:
        raise Unauthenticated("Log in or send an API token.")
    return found


def sender() -> Principal | Device:
    """Who sends telemetry: a device by its credential, or a user by a token."""
    device: Device | None = g.get("device")
    return device if device is not None else principal()


def request_meta(reason: str | None = None) -> RequestMeta:
    """This request's id, source and reason for the audit log; ``reason`` beats the header."""
    chosen = (reason or request.headers.get("X-Change-Reason") or "").strip() or None
    if chosen is not None and len(chosen) > REASON_MAX:
        raise BadRequest(f"The change reason is longer than {REASON_MAX} characters.")
    return RequestMeta(
        request_id=g.request_id,
        source_ip=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:400] or None,
        reason=chosen,
    )


def actor(reason: str | None = None) -> Actor:
    """The acting principal and this request's metadata."""
    return Actor(principal(), request_meta(reason))


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


_READS_ONLY = "_outpost_reads_database_only"
V = TypeVar("V", bound=Callable[..., Any])


def read_only_database(view: V) -> V:
    """Mark an unsafe endpoint that only reads the relational database (telemetry
    ingestion writes elsewhere): it gets a read session, so it holds no write lock."""
    setattr(view, _READS_ONLY, True)
    return view


def _writes_database() -> bool:
    if request.method in SAFE_METHODS:
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return not getattr(view, _READS_ONLY, False)


def request_session() -> Session:
    """This request's database session, opened on first use.

    Authentication and the handler share it, so a request costs one connection and
    its checks read the same state it writes. Unsafe methods get a write session,
    unless their endpoint is marked ``read_only_database``.
    """
    session: Session | None = g.get("db_session")
    if session is None:
        session = services().db.session(write=_writes_database())
        g.db_session = session
    return session


@contextmanager
def transaction() -> Iterator[Session]:
    """The request's unit of work: committed when the block ends, rolled back if it raises."""
    session = request_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def release_request_session() -> None:
    """End the request's transaction before a long transfer, so it holds no lock.

    On SQLite an unsafe request's session holds the write lock from its first query.
    """
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


def after_session(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the request's session is closed (bookkeeping writes)."""
    g.setdefault("after_session", []).append(callback)


def _close_session(_error: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
    for callback in g.pop("after_session", []):
        callback()
