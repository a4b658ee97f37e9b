"""Documents for the demo fleet's first site, made here so ``make run`` needs no assets.

They go through the same upload service as any client's files.
"""

from __future__ import annotations

import io
import struct
import zlib

from sqlalchemy import select

from outpost.db import Database
from outpost.files import service as files
from outpost.files.schemas import FileUpload
from outpost.files.storage import BlobStore
from outpost.identity import service as identity
from outpost.inventory.models import Site
from outpost.settings import Settings


def tiny_pdf(title: str, lines: list[str]) -> bytes:
    """A valid one-page PDF showing ``title`` and ``lines`` in Helvetica."""
    text = [f"BT /F1 20 Tf 56 780 Td ({title}) Tj ET"]
    text += [f"BT /F1 12 Tf 56 {740 - 18 * i} Td ({line}) Tj ET" for i, line in enumerate(lines)]
    stream = "\n".join(text).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def tiny_png(width: int = 160, height: int = 90) -> bytes:
    """A small RGB gradient: a sky over a row of panels."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter: none
        for x in range(width):
            panel = y > height * 0.6 and (x // 20) % 2 == 0
            row += bytes((20, 40, 90) if panel else (90 + y, 150 + y // 2, 230))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def seed_demo_files(db: Database, blobs: BlobStore, settings: Settings, org_id: str) -> int:
    """Upload a report, a datasheet and a photo to the first demo site; the count."""
    with db.unit_of_work(write=False) as session:
        site_id = session.scalar(
            select(Site.id).where(Site.org_id == org_id).order_by(Site.code).limit(1)
        )
    if site_id is None:
        return 0
    documents = [
        ("/", "Commissioning report.pdf", tiny_pdf("Commissioning report", ["All checks passed."])),
        ("/datasheets", "Inverter datasheet.pdf", tiny_pdf("Inverter datasheet", ["50 kW AC"])),
        ("/photos", "Roof view.png", tiny_png()),
    ]
    actor = identity.system_actor(org_id, "demo seed")
    limits = files.FileLimits.from_settings(settings)
    for folder, name, content in documents:
        upload = FileUpload(site_id=site_id, folder=folder, name=name)
        files.upload_file(
            db, blobs, actor, upload, io.BytesIO(content), declared_size=len(content), limits=limits
        )
    return len(documents)
