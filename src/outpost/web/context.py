"""Per-app services and per-request state, behind typed accessors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session

from outpost.db import Database
from outpost.errors import BadRequest, Unauthenticated
from outpost.files.storage import BlobStore
from outpost.identity.principal import Actor, Principal, RequestMeta
from outpost.settings import Settings

EXTENSION = "outpost"
REASON_MAX = 1000


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    blobs: BlobStore


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


def request_session() -> Session:
    """This request's database session, opened on first use.

    Authentication and the handler share it, so a request costs one connection and
    its checks read the same state it writes. Unsafe methods get a write session.
    """
    session: Session | None = g.get("db_session")
    if session is None:
        session = services().db.session(write=request.method not in SAFE_METHODS)
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
