"""Issue 5, the file pole, through the real server (``outpost serve``, 2 workers x 4 threads).

1. Local blob store (SQLite run only; the database plays no part in moving bytes):
   upload then download a 64 MiB and a 1 GiB file (``--quick``: 16 and 64 MiB), the
   body streamed from a generator with a Content-Length, the download streamed into
   SHA-256. Throughput each way, and the peak memory of the server sampled every 50 ms:
   the RSS of the gunicorn master + workers summed (target <= 100 MB, and flat across
   sizes), their PSS (pages shared after fork counted once), the busiest worker, the
   workers' VmHWM, and apart the embedded background-jobs process.
2. S3 blob store (SQLite run only) on moto's S3 server on loopback: the same with a
   1 GiB file (``--quick``: 32 MiB), as a ratio to boto3 moving the same bytes to and
   from the same endpoint directly (``upload_fileobj`` with ``DIRECT_TRANSFER``,
   ``get_object`` read in 1 MiB chunks into SHA-256): >= 0.8 each way. Best of 3
   alternating rounds (``--quick``: 1).
3. Listing (every engine): first page (limit 50) of a folder holding 10,000 files
   (``--quick``: 1,000), p50 <= 20 ms. The rows are inserted directly; the listing
   never reads blobs.

MB is 10^6 bytes throughout (throughput in MB/s, memory in MB).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from boto3.s3.transfer import TransferConfig
from sqlalchemy import Table, select, text

from bench.common import (
    Context,
    Result,
    Server,
    Timer,
    at_most,
    expect,
    info,
    latency_results,
    running_server,
)
from outpost import ids
from outpost.clock import utcnow
from outpost.db import Database, bulk_insert
from outpost.demo import DEMO_ORG, seed_demo
from outpost.files.models import File, FileVersion
from outpost.files.storage.s3 import S3BlobStore
from outpost.identity.models import Organization
from outpost.inventory.models import Site

# tests/support/s3.py runs moto's S3 server; it imports its siblings as ``support.*``.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from support.s3 import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    running_s3_server,
    s3_test_settings,
)

NAME = "files"
MB = 1_000_000
MIB = 1024 * 1024
GIB = 1024 * MIB
CHUNK = MIB
BLOCK = 4 * MIB
PDF_HEAD = b"%PDF-1.4\n"  # sniffed as application/pdf: random bytes alone are refused (415)
SAMPLE_EVERY_S = 0.05
RSS_LIMIT_MB = 100.0
RATIO_TARGET = 0.8
LIST_TARGETS_MS = {"p50": 20.0}
LIST_FOLDER = "/bench"
TRANSFER_FOLDER = "/transfer"
#: boto3's own defaults, spelled out; the classic transfer manager, as the server's store uses.
DIRECT_TRANSFER = TransferConfig(
    multipart_threshold=8 * MIB,
    multipart_chunksize=8 * MIB,
    max_concurrency=10,
    use_threads=True,
    preferred_transfer_client="classic",
)


@dataclass(frozen=True)
class Sizes:
    local: tuple[int, ...]
    s3: int
    s3_rounds: int
    files: int
    requests: int


FULL = Sizes(local=(64 * MIB, GIB), s3=GIB, s3_rounds=3, files=10_000, requests=500)
QUICK = Sizes(local=(16 * MIB, 64 * MIB), s3=32 * MIB, s3_rounds=1, files=1_000, requests=100)


def size_label(size: int) -> str:
    return f"{size // GIB} GiB" if size % GIB == 0 else f"{size // MIB} MiB"


def mb_per_s(size: int, seconds: float) -> float:
    return size / MB / seconds


# --- the bytes sent ---------------------------------------------------------------------------


class Payload:
    """``size`` bytes: one 4 MiB block starting with ``%PDF-1.4``, repeated.

    Generated on the fly, so neither the bench nor the server needs the file in memory.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self._block = PDF_HEAD + random.Random(seed).randbytes(BLOCK - len(PDF_HEAD))
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        self.sha256 = digest.hexdigest()

    def chunks(self) -> Iterator[bytes]:
        left = self.size
        while left >= BLOCK:
            yield self._block
            left -= BLOCK
        if left:
            yield self._block[:left]

    def reader(self) -> PayloadReader:
        return PayloadReader(self)


class PayloadReader:
    """A non-seekable file-like over a ``Payload`` (what boto3 reads the direct upload from)."""

    def __init__(self, payload: Payload) -> None:
        self._chunks = payload.chunks()
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        parts = [self._pending] if self._pending else []
        got = len(self._pending)
        while size < 0 or got < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        data = b"".join(parts)
        if size < 0 or len(data) <= size:
            self._pending = b""
            return data
        self._pending = data[size:]
        return data[:size]


def sha256_of(read_into: Any) -> tuple[str, int]:
    """Drain ``read_into(buffer) -> n`` in 1 MiB reads into SHA-256; the digest and size."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    total = 0
    while n := read_into(view):
        digest.update(view[:n])
        total += n
    return digest.hexdigest(), total


# --- the server's memory ------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in task.read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def gunicorn_processes(master: int) -> tuple[list[int], list[int]]:
    """The gunicorn master and its workers (forked: the same command line), and the rest
    of the tree (the embedded ``outpost worker`` that runs background jobs)."""
    command = _cmdline(master)
    gunicorn: list[int] = [master]
    others: list[int] = []
    for pid in process_tree(master)[1:]:
        (gunicorn if _cmdline(pid) == command else others).append(pid)
    return gunicorn, others


def kb_field(path: str, name: str) -> int:
    """A ``kB`` field of a ``/proc`` file (``VmRSS``, ``VmHWM``, ``Pss``); 0 if it is gone."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int) -> float:
    return kb_field(f"/proc/{pid}/status", "VmRSS") * 1024 / MB


def pss_mb(pid: int) -> float:
    """Proportional set size: pages shared after fork count once across the processes."""
    return kb_field(f"/proc/{pid}/smaps_rollup", "Pss") * 1024 / MB


def hwm_mb(pid: int) -> float:
    return kb_field(f"/proc/{pid}/status", "VmHWM") * 1024 / MB


@dataclass
class Memory:
    """Peaks seen by ``RssPeak``, in MB."""

    rss: float = 0.0  # gunicorn master + workers, summed
    pss: float = 0.0  # the same, proportional
    worker: float = 0.0  # the largest RSS of one gunicorn worker
    jobs: float = 0.0  # the embedded background-jobs process

    def merge(self, other: Memory) -> Memory:
        return Memory(*(max(a, b) for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[float, float, float, float]:
        return self.rss, self.pss, self.worker, self.jobs


class RssPeak:
    """Sample the server's memory every 50 ms while the ``with`` block runs."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.peak = Memory()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        gunicorn, others = gunicorn_processes(self.master)
        rss = {pid: rss_mb(pid) for pid in gunicorn}
        now = Memory(
            rss=sum(rss.values()),
            pss=sum(pss_mb(pid) for pid in gunicorn),
            worker=max((mb for pid, mb in rss.items() if pid != self.master), default=0.0),
            jobs=sum(rss_mb(pid) for pid in others),
        )
        self.peak = self.peak.merge(now)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self._sample()

    def __enter__(self) -> RssPeak:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# --- transfers through the server -----------------------------------------------------------


def _connection(server: Server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)


def upload(server: Server, site_id: str, name: str, payload: Payload) -> tuple[str, float]:
    """``PUT /api/v1/files`` streaming ``payload`` with a Content-Length; the file id, seconds."""
    query = urlencode({"name": name, "folder": TRANSFER_FOLDER, "site_id": site_id})
    headers = {
        "Authorization": f"Bearer {server.token}",
        "Content-Type": "application/octet-stream",
        "Content-Length": str(payload.size),
    }
    connection = _connection(server)
    try:
        with Timer() as timer:
            connection.request("PUT", f"/api/v1/files?{query}", payload.chunks(), headers)
            response = connection.getresponse()
            body = response.read()
    finally:
        connection.close()
    if response.status not in (200, 201):
        raise RuntimeError(f"PUT /api/v1/files: HTTP {response.status}: {body[:500]!r}")
    found = json.loads(body)
    if found["size"] != payload.size or found["sha256"] != payload.sha256:
        raise RuntimeError(f"PUT /api/v1/files stored {found['size']} bytes, {found['sha256']}")
    return str(found["id"]), timer.seconds


def download(server: Server, file_id: str, payload: Payload) -> float:
    """``GET /api/v1/files/<id>/content`` streamed into SHA-256; seconds."""
    connection = _connection(server)
    try:
        with Timer() as timer:
            connection.request(
                "GET",
                f"/api/v1/files/{file_id}/content",
                headers={"Authorization": f"Bearer {server.token}"},
            )
            response = connection.getresponse()
            if response.status != 200:
                raise RuntimeError(f"GET content: HTTP {response.status}: {response.read(500)!r}")
            digest, size = sha256_of(response.readinto)
    finally:
        connection.close()
    if (digest, size) != (payload.sha256, payload.size):
        raise RuntimeError(f"GET content: {size} bytes, sha256 {digest}: not what was uploaded")
    return timer.seconds


def memory_results(label: str, up: Memory, down: Memory, *, target: bool) -> list[Result]:
    """The server's peaks while uploading and while downloading ``label``."""
    out: list[Result] = []
    for verb, peak in (("upload", up), ("download", down)):
        figure = f"{label}: peak RSS of the worker serving the {verb}"
        if target:
            out.append(at_most(NAME, figure, peak.worker, RSS_LIMIT_MB, "MB"))
        else:
            out.append(info(NAME, figure, peak.worker, "MB"))
        out.append(info(NAME, f"{label}: peak RSS, {verb}, master + workers", peak.rss, "MB"))
    both = up.merge(down)
    return [
        *out,
        info(NAME, f"{label}: server peak PSS, either way (master + workers)", both.pss, "MB"),
    ]


def run_local(ctx: Context, url: str, site_id: str, sizes: Sizes) -> list[Result]:
    results: list[Result] = []
    peaks: list[float] = []
    with running_server(ctx, url, "files-local") as server:
        master = server.process.pid
        time.sleep(2)  # let the workers and the jobs process settle after boot
        with RssPeak(master) as idle:
            time.sleep(0.5)
        results += [
            info(NAME, "server RSS idle (master + 2 workers)", idle.peak.rss, "MB"),
            info(NAME, "server PSS idle (master + 2 workers)", idle.peak.pss, "MB"),
        ]
        jobs = idle.peak.jobs
        for number, size in enumerate(sizes.local):
            label = f"local {size_label(size)}"
            payload = Payload(size, seed=number)
            ctx.log(f"{label}: upload, then download")
            with RssPeak(master) as up:
                file_id, up_s = upload(server, site_id, f"local-{number}.pdf", payload)
            with RssPeak(master) as down:
                down_s = download(server, file_id, payload)
            results += [
                info(NAME, f"{label}: upload", mb_per_s(size, up_s), "MB/s"),
                info(NAME, f"{label}: download (sha256 checked)", mb_per_s(size, down_s), "MB/s"),
                *memory_results(label, up.peak, down.peak, target=True),
            ]
            peaks.append(max(up.peak.rss, down.peak.rss))
            jobs = max(jobs, up.peak.jobs, down.peak.jobs)
        gunicorn, _ = gunicorn_processes(master)
        hwm = max(hwm_mb(pid) for pid in gunicorn[1:])
    first, last = size_label(sizes.local[0]), size_label(sizes.local[-1])
    return [
        *results,
        info(NAME, f"server peak RSS growth, local {first} -> {last}", peaks[-1] - peaks[0], "MB"),
        info(NAME, "largest worker VmHWM after the local transfers", hwm, "MB"),
        info(NAME, "background-jobs process peak RSS (not counted above)", jobs, "MB"),
    ]


# --- S3: through the server vs boto3 directly ------------------------------------------------


def run_s3(ctx: Context, url: str, site_id: str, sizes: Sizes) -> list[Result]:
    size = sizes.s3
    label = size_label(size)
    payload = Payload(size, seed=99)
    best: dict[str, float] = {}

    def keep(key: str, seconds: float) -> None:
        best[key] = max(best.get(key, 0.0), mb_per_s(size, seconds))

    with running_s3_server() as endpoint:
        settings = s3_test_settings(endpoint, ctx.workdir / "s3")
        store = S3BlobStore.from_settings(settings)
        store.ensure_bucket()
        # The same boto3 client (same configuration) the server uses, with boto3's
        # default transfer settings: the ratio measures what Outpost adds, nothing else.
        direct = S3BlobStore.from_settings(settings).client
        env = {
            "OUTPOST_FILE_STORE": "s3",
            "OUTPOST_S3_ENDPOINT_URL": endpoint,
            "OUTPOST_S3_REGION": REGION,
            "OUTPOST_S3_BUCKET": settings.s3_bucket,
            "OUTPOST_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "OUTPOST_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }
        with running_server(ctx, url, "files-s3", env) as server:
            master = server.process.pid
            up, down = Memory(), Memory()
            rounds: list[float] = []  # the busiest worker's peak in each round
            for round_ in range(sizes.s3_rounds):
                ctx.log(f"s3: round {round_ + 1} of {sizes.s3_rounds}, {label} each way")
                key = f"direct/{round_}"
                with Timer() as timer:
                    direct.upload_fileobj(
                        payload.reader(), settings.s3_bucket, key, Config=DIRECT_TRANSFER
                    )
                keep("direct up", timer.seconds)
                with RssPeak(master) as sampled_up:
                    file_id, seconds = upload(server, site_id, "s3.pdf", payload)
                keep("server up", seconds)
                up = up.merge(sampled_up.peak)
                with Timer() as timer:
                    body = direct.get_object(Bucket=settings.s3_bucket, Key=key)["Body"]
                    digest, got = _drain(body)
                if (digest, got) != (payload.sha256, payload.size):
                    raise RuntimeError(f"direct get_object: {got} bytes, sha256 {digest}")
                keep("direct down", timer.seconds)
                with RssPeak(master) as sampled_down:
                    keep("server down", download(server, file_id, payload))
                down = down.merge(sampled_down.peak)
                rounds.append(max(sampled_up.peak.worker, sampled_down.peak.worker))
                direct.delete_object(Bucket=settings.s3_bucket, Key=key)
    results: list[Result] = []
    for way, verb in (("up", "upload"), ("down", "download")):
        via, raw = best[f"server {way}"], best[f"direct {way}"]
        ratio = via / raw
        results += [
            info(NAME, f"S3 {label}: {verb} through the server", via, "MB/s"),
            info(NAME, f"S3 {label}: {verb} boto3 direct", raw, "MB/s"),
            Result(
                NAME,
                f"S3 {label}: {verb} ratio server/direct (best of {sizes.s3_rounds})",
                ratio,
                "ratio",
                f">= {RATIO_TARGET:.2f}",
                ratio >= RATIO_TARGET,
            ),
        ]
    per_round = [
        info(NAME, f"S3 {label}: busiest worker peak RSS in round {n}", rounds[n - 1], "MB")
        for n in sorted({1, len(rounds)})
    ]
    return [*results, *memory_results(f"S3 {label}", up, down, target=False), *per_round]


def _drain(body: Any) -> tuple[str, int]:
    digest = hashlib.sha256()
    total = 0
    try:
        while chunk := body.read(CHUNK):
            digest.update(chunk)
            total += len(chunk)
    finally:
        body.close()
    return digest.hexdigest(), total


# --- listing ------------------------------------------------------------------------------------


def insert_files(url: str, org_id: str, site_id: str, count: int) -> None:
    """``count`` live files (one version each) in ``LIST_FOLDER`` of the site, by SQL."""
    now = utcnow()
    files: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    for number in range(count):
        file_id = ids.new_id("fil")
        digest = hashlib.sha256(file_id.encode()).hexdigest()
        size = 1000 + number
        files.append(
            {
                "id": file_id,
                "org_id": org_id,
                "owner_type": "site",
                "owner_id": site_id,
                "folder": LIST_FOLDER,
                "name": f"report-{number:05d}.pdf",
                "description": "",
                "tags": [],
                "content_type": "application/pdf",
                "size": size,
                "sha256": digest,
                "version_count": 1,
                "revision": 1,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            }
        )
        versions.append(
            {
                "id": ids.new_id("ver"),
                "org_id": org_id,
                "file_id": file_id,
                "number": 1,
                "blob_key": f"{org_id}/{ids.new_id('blob')}",
                "size": size,
                "sha256": digest,
                "content_type": "application/pdf",
                "created_at": now,
                "created_by": "bench",
            }
        )
    database = Database.connect(url)
    try:
        with database.unit_of_work() as session:
            bulk_insert(session, cast(Table, File.__table__), files)
            bulk_insert(session, cast(Table, FileVersion.__table__), versions)
        if database.dialect == "postgresql":
            # What autovacuum's ANALYZE does within a minute of 10,000 new rows.
            with database.unit_of_work() as session:
                session.execute(text("ANALYZE files"))
    finally:
        database.dispose()


def run_listing(ctx: Context, url: str, org_id: str, site_id: str, sizes: Sizes) -> list[Result]:
    with Timer() as timer:
        insert_files(url, org_id, site_id, sizes.files)
    ctx.log(f"inserted {sizes.files:,} files on {ctx.engine} in {timer.seconds:.1f} s")
    path = f"/api/v1/files?{urlencode({'site_id': site_id, 'folder': LIST_FOLDER, 'limit': 50})}"
    first: list[float] = []
    later: list[float] = []
    with running_server(ctx, url, "files-list") as server:
        client = server.client()
        for _ in range(5):  # warm-up, not timed
            client.request("GET", path)
        cursor = None
        for _ in range(sizes.requests):
            response = expect(client.request("GET", path), 200, "GET /files")
            page = response.json()
            names = [item["name"] for item in page["items"]]
            if names != [f"report-{n:05d}.pdf" for n in range(50)] or not page["next_cursor"]:
                raise RuntimeError("GET /files returned a wrong first page")
            first.append(response.seconds * 1000)
            cursor = page["next_cursor"]
        # Then follow the cursor for a while: later pages, for comparison.
        for _ in range(min(sizes.requests, sizes.files // 50 - 1)):
            response = expect(
                client.request("GET", f"{path}&{urlencode({'cursor': cursor})}"), 200, "GET /files"
            )
            page = response.json()
            if len(page["items"]) != 50:
                raise RuntimeError("GET /files?cursor= returned a short page")
            later.append(response.seconds * 1000)
            cursor = page["next_cursor"]
        reconnects = client.reconnects
        client.close()
    label = f"GET first 50 of {sizes.files:,} files"
    return [
        *latency_results(NAME, label, first, LIST_TARGETS_MS),
        *latency_results(NAME, "GET next pages by cursor", later, {})[:2],
        info(NAME, "client reconnects during the listing", reconnects, ""),
    ]


# --- the benchmark ---------------------------------------------------------------------------


def _one_site(ctx: Context) -> tuple[str, str, str]:
    """A fresh database with the demo organization, its admin and one site: url, org, site."""
    url = ctx.fresh_database("files")
    database = Database.connect(url)
    try:
        with database.unit_of_work() as session:
            seed_demo(session, sites=1)
        with database.unit_of_work(write=False) as session:
            org_id = session.scalars(
                select(Organization.id).where(Organization.name == DEMO_ORG)
            ).one()
            site_id = session.scalars(select(Site.id).where(Site.org_id == org_id)).one()
    finally:
        database.dispose()
    return url, org_id, site_id


def run(ctx: Context) -> list[Result]:
    sizes = QUICK if ctx.quick else FULL
    url, org_id, site_id = _one_site(ctx)
    results: list[Result] = []
    if ctx.engine == "sqlite":  # moving bytes does not depend on the engine: measured once
        results += run_local(ctx, url, site_id, sizes)
        results += run_s3(ctx, url, site_id, sizes)
    else:
        ctx.log("transfers are measured on the sqlite run only")
    results += run_listing(ctx, url, org_id, site_id, sizes)
    return results
