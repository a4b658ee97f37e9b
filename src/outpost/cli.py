"""The ``outpost`` command: the same services as the web app, without a request."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from outpost.db import Database
from outpost.errors import OutpostError
from outpost.settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


@contextmanager
def _database() -> Iterator[Database]:
    database = Database.connect(_settings().database_url, pool=False)
    try:
        yield database
    finally:
        database.dispose()


@contextmanager
def _unit_of_work() -> Iterator[Session]:
    with _database() as database, database.unit_of_work() as session:
        yield session


def _fail(exc: OutpostError) -> None:
    click.echo(f"error: {exc.detail}", err=True)
    for violation in getattr(exc, "violations", []):
        click.echo(f"  - [{violation.code}] {violation.path}: {violation.message}", err=True)
    sys.exit(1)


@click.group()
def main() -> None:
    """Outpost: remote management for IoT fleets. Settings come from OUTPOST_* variables."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the UI and API with gunicorn (seeds nothing)."""
    from outpost.server import run

    run(host=host, port=port, workers=workers, threads=threads)


@main.command()
@click.option("--interval", default=3600, show_default=True, type=click.IntRange(1, 86400))
@click.option("--once", is_flag=True, help="Run every job once and exit.")
@click.option("--parent-pid", type=int, hidden=True, help="Exit when this process is gone.")
def worker(interval: int, once: bool, parent_pid: int | None) -> None:
    """Run the background jobs (purging deleted files after their retention period)."""
    import logging

    from outpost import jobs

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = _settings()
    with _database() as database:
        if once:
            for name, count in jobs.run_once(settings, database).items():
                click.echo(f"{name}: {count}")
            return
        jobs.run_forever(settings, database, interval_s=interval, parent_pid=parent_pid)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration."""
    from outpost.migrate import upgrade

    upgrade(_settings().database_url)
    click.echo("database is up to date")


@main.command()
@click.option("--sites", default=500, show_default=True, type=click.IntRange(1, 5000))
def demo(sites: int) -> None:
    """Seed the demo fleet (once; does nothing if it exists)."""
    from outpost import demo as demo_fleet
    from outpost.demo_files import seed_demo_files
    from outpost.files.storage import open_blob_store

    settings = _settings()
    with _database() as database:
        with database.unit_of_work() as session:
            result = demo_fleet.seed_demo(session, sites=sites)
        if result.created:
            blobs = open_blob_store(settings)
            documents = seed_demo_files(database, blobs, settings, result.org_id)
    if result.created:
        click.echo(f"seeded {result.sites} sites, {result.assets} assets, {documents} files")
    else:
        click.echo("the demo fleet already exists")


SIMULATOR_TOKEN = "demo simulator"


@main.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The server.")
@click.option("--every", default=10, show_default=True, type=click.IntRange(1, 3600), help="s")
@click.option("--sites", type=click.IntRange(1, None), help="Only the first N sites (by code).")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1, 16_000))
@click.option("--connections", default=4, show_default=True, type=click.IntRange(1, 64))
def simulate(url: str, every: int, sites: int | None, batch: int, connections: int) -> None:
    """Feed the demo fleet with plausible telemetry through POST /api/v1/telemetry, one
    reading per asset every --every seconds, until interrupted."""
    import signal
    import threading

    from outpost import demo as demo_fleet
    from outpost.identity import service
    from outpost.identity.principal import Actor
    from outpost.telemetry import simulator

    def revoke_previous(session: Session, actor: Actor) -> None:
        for old in service.list_tokens(session, actor.principal):
            if old.name == SIMULATOR_TOKEN and old.revoked_at is None:
                service.revoke_token(session, actor, old.id)

    try:
        with _unit_of_work() as session:
            organization = service.get_organization_by_name(session, demo_fleet.DEMO_ORG)
            admin = service.get_user_by_email(session, demo_fleet.ADMIN_EMAIL)
            member = service.principal_for(session, admin, organization.id)
            actor = Actor(replace(member, kind="cli", label=f"{member.label} (outpost simulate)"))
            fleet = simulator.load_fleet(session, actor.principal, sites=sites)
            revoke_previous(session, actor)
            issued = service.create_token(
                session,
                actor,
                name=SIMULATOR_TOKEN,
                permissions=simulator.TOKEN_PERMISSIONS,
                max_lifetime=_settings().token_max_lifetime,
            )
    except OutpostError as exc:
        _fail(exc)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        threading.Thread(target=stop.set).start()  # not Event.set inside a signal handler

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    run = simulator.Simulator(
        fleet,
        base_url=url,
        token=issued.secret,
        every_s=every,
        batch=batch,
        connections=connections,
        echo=click.echo,
        stop=stop,
    )
    click.echo(
        f"simulate: {len(fleet):,} assets every {every} s to {url} "
        f"(token {issued.token.prefix}…, Ctrl-C to stop)"
    )
    failed: simulator.Fatal | None = None
    try:
        if run.wait_healthy():
            run.run()
    except simulator.Fatal as exc:
        failed = exc
    finally:
        with _unit_of_work() as session:
            revoke_previous(session, actor)
    stats = run.stats
    click.echo(
        f"simulate: stopped after {stats.points:,} points, {stats.retries:,} retries, "
        f"{stats.errors:,} errors, {stats.dropped:,} points refused"
    )
    if failed is not None:
        click.echo(f"error: {failed}", err=True)
        sys.exit(1)


@main.group()
def org() -> None:
    """Organizations (tenants)."""


@org.command("create")
@click.option("--name", required=True)
def org_create(name: str) -> None:
    from outpost.identity import service

    try:
        with _unit_of_work() as session:
            created = service.create_organization(session, name)
    except OutpostError as exc:
        _fail(exc)
    click.echo(created.id)


@main.group()
def user() -> None:
    """Users and memberships."""


@user.command("create")
@click.option("--org", "org_name", required=True)
@click.option("--email", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True)
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), default="viewer")
def user_create(org_name: str, email: str, password: str, role: str) -> None:
    from outpost.identity import service

    try:
        with _unit_of_work() as session:
            organization = service.get_organization_by_name(session, org_name)
            actor = service.system_actor(organization.id, "cli")
            created = service.add_user(session, actor, email=email, password=password, role=role)
    except OutpostError as exc:
        _fail(exc)
    click.echo(created.id)


@main.group()
def token() -> None:
    """API tokens."""


def _duration(_ctx: Any, _param: Any, value: str | None) -> timedelta | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)([mhd])", value)
    if match is None:
        raise click.BadParameter("use a number and a unit: 30m, 12h, 90d")
    amount, unit = int(match.group(1)), match.group(2)
    return {
        "m": timedelta(minutes=amount),
        "h": timedelta(hours=amount),
        "d": timedelta(days=amount),
    }[unit]


@token.command("create")
@click.option("--org", "org_name", required=True)
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--expires-in", callback=_duration, help="e.g. 30m, 12h, 90d (default and most: 90d)")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    help="Narrow the token to this permission (repeat for several), e.g. asset.read",
)
def token_create(
    org_name: str,
    email: str,
    name: str,
    expires_in: timedelta | None,
    permissions: tuple[str, ...],
) -> None:
    """Print a new token for the user (only the token, on stdout)."""
    from outpost.identity import service
    from outpost.identity.principal import Actor

    try:
        with _unit_of_work() as session:
            organization = service.get_organization_by_name(session, org_name)
            member = service.principal_for(
                session, service.get_user_by_email(session, email), organization.id
            )
            on_server = replace(member, kind="cli", label=f"{member.label} (outpost CLI)")
            issued = service.create_token(
                session,
                Actor(on_server),
                name=name,
                expires_in=expires_in,
                permissions=permissions or None,
                max_lifetime=_settings().token_max_lifetime,
            )
    except OutpostError as exc:
        _fail(exc)
    click.echo(issued.secret)


@main.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Recompute every hash chain; exit 1 naming the first broken event."""
    from outpost.audit.verify import verify_chains

    with _database() as database, database.read_engine.connect() as connection:
        reports = verify_chains(connection)
    failed = False
    for report in reports:
        if report.ok:
            click.echo(f"{report.org_id}: {report.events} events, chain intact")
        else:
            failed = True
            click.echo(
                f"{report.org_id}: BROKEN at event seq {report.broken_seq}: {report.problem}",
                err=True,
            )
    sys.exit(1 if failed else 0)


@main.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--org", "org_name", required=True)
@click.option("--apply", "do_apply", is_flag=True, help="Apply; without it, only a dry run.")
def import_assets(csv_file: Path, org_name: str, do_apply: bool) -> None:
    """Import assets from CSV through the change-set path: dry run, then --apply."""
    from outpost.identity import service
    from outpost.inventory import importer

    try:
        with _unit_of_work() as session:
            organization = service.get_organization_by_name(session, org_name)
            actor = service.system_actor(organization.id, f"cli import {csv_file.name}")
            report = importer.import_csv(
                session, actor, csv_file.read_text(encoding="utf-8-sig"), apply=do_apply
            )
    except OutpostError as exc:
        _fail(exc)
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.valid else 1)


@main.command("mosquitto-config")
@click.option("--password-file", "password_path", required=True, type=click.Path(path_type=Path))
@click.option("--acl-file", "acl_path", required=True, type=click.Path(path_type=Path))
@click.option("--reload-pid", type=int, help="Send this Mosquitto process a signal to reload.")
@click.option("--signal", "signal_name", default="SIGHUP", show_default=True)
def mosquitto_config(
    password_path: Path, acl_path: Path, reload_pid: int | None, signal_name: str
) -> None:
    """Write Mosquitto's password and ACL files from the live device credentials.

    Point mosquitto.conf at them (``password_file``, ``acl_file``, ``allow_anonymous
    false``); the ingester logs in as OUTPOST_MQTT_USERNAME / OUTPOST_MQTT_PASSWORD.
    """
    import signal

    from outpost.connectivity.credentials import live_broker_entries
    from outpost.connectivity.mosquitto import reload_broker, write_broker_files

    settings = _settings()
    try:
        signum = signal.Signals[signal_name.upper()]
    except KeyError:
        raise click.BadParameter(f"unknown signal {signal_name}", param_hint="--signal") from None
    with _database() as database, database.unit_of_work(write=False) as session:
        entries = live_broker_entries(session)
    try:
        devices = write_broker_files(
            entries,
            password_path,
            acl_path,
            ingester_username=settings.mqtt_username,
            ingester_password=settings.mqtt_password,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {password_path} ({devices} devices + the ingester) and {acl_path}")
    if reload_pid is not None:
        reload_broker(reload_pid, signum)
        click.echo(f"sent {signum.name} to {reload_pid}")


@main.command("ingest-mqtt")
@click.option("--host", help="Broker host (OUTPOST_MQTT_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Broker port (OUTPOST_MQTT_PORT, default 1883).")
@click.option("--username", help="OUTPOST_MQTT_USERNAME, default outpost-ingester.")
@click.option("--password", help="OUTPOST_MQTT_PASSWORD (prefer the variable).")
@click.option("--group", help="Shared-subscription group (OUTPOST_MQTT_GROUP, default outpost).")
@click.option("--client-id", help="Stable per ingester process [default: outpost-ingest-<host>].")
@click.option("--batch-messages", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--batch-wait-ms", default=50, show_default=True, type=click.IntRange(0))
@click.option("--queue-messages", default=5000, show_default=True, type=click.IntRange(1, 65535))
def ingest_mqtt(
    host: str | None,
    port: int | None,
    username: str | None,
    password: str | None,
    group: str | None,
    client_id: str | None,
    batch_messages: int,
    batch_wait_ms: int,
    queue_messages: int,
) -> None:
    """Read device telemetry from the MQTT broker (acknowledged once stored); SIGTERM
    finishes what was received and stops."""
    import logging
    import signal
    import socket

    from outpost.telemetry.mqtt_ingest import MqttIngester, MqttOptions
    from outpost.telemetry.store import open_telemetry_store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = _settings()
    options = MqttOptions(
        host=host or settings.mqtt_host,
        port=port or settings.mqtt_port,
        username=username or settings.mqtt_username,
        password=password or settings.mqtt_password,
        group=group or settings.mqtt_group,
        client_id=client_id or f"outpost-ingest-{socket.gethostname()}",
        batch_messages=batch_messages,
        batch_wait_ms=batch_wait_ms,
        queue_messages=queue_messages,
    )
    store = open_telemetry_store(settings)
    try:
        with _database() as database:
            ingester = MqttIngester(
                options, database, store, max_points=settings.telemetry_max_batch_points
            )
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda _signum, _frame: ingester.stop())
            ingester.run()
    finally:
        store.close()
