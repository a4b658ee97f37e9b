"""``python -m bench [--only NAME[,NAME]] [--engines sqlite,postgres] [--quick] [--markdown]``.

Runs every benchmark on each engine and prints each figure with its target and a
verdict. The exit code is 0 when every benchmark ran (even if some figures MISS
their target) and 1 when one failed with an error.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from bench import audit, authz, changeset, files, listing, patch, reference, seed, telemetry
from bench.common import ENGINES, Context, Result, check_postgres

BENCHES: dict[str, ModuleType] = {
    module.NAME: module
    for module in (seed, patch, changeset, listing, reference, audit, files, authz, telemetry)
}


def _log(message: str) -> None:
    print(f"  .. {message}", flush=True)


def machine() -> list[str]:
    cpu = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        postgres = check_postgres()
    except Exception as exc:
        postgres = f"unavailable ({exc.__class__.__name__})"
    return [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"cpu: {cpu}, {os.cpu_count()} cores",
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"postgresql {postgres}",
    ]


def table(results: list[tuple[str, Result]]) -> list[str]:
    header = ("engine", "bench", "figure", "target", "measured", "verdict")
    rows = [(engine, r.bench, r.figure, r.target, r.shown(), r.verdict) for engine, r in results]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))

    return [line(header), line(tuple("-" * w for w in widths)), *(line(row) for row in rows)]


def markdown(results: list[tuple[str, Result]], engine: str) -> list[str]:
    out = ["| figure | target | measured | verdict |", "|---|---|---|---|"]
    for name, r in results:
        if name == engine:
            out.append(f"| {r.bench}: {r.figure} | {r.target} | {r.shown()} | {r.verdict} |")
    return out


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", help=f"comma-separated benchmarks to run, of: {', '.join(BENCHES)}"
    )
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated: sqlite,postgres"
    )
    parser.add_argument("--quick", action="store_true", help="small workloads: a smoke run")
    parser.add_argument("--markdown", action="store_true", help="also print Markdown tables")
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    engines = args.engines.split(",")
    bad_engines = [e for e in engines if e not in ENGINES]
    if unknown or bad_engines:
        parser.error(f"unknown benchmark or engine: {', '.join(unknown + bad_engines)}")
    args.names = names
    args.engine_list = engines
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    quick = " (--quick: reduced workloads, a smoke run)" if args.quick else ""
    print(f"Outpost benchmarks{quick}")
    for line in machine():
        print(f"  {line}")
    results: list[tuple[str, Result]] = []
    errors: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-"))
    started = time.perf_counter()
    for engine in args.engine_list:
        for name in args.names:
            ctx = Context(engine, args.quick, workdir / engine, _log)
            ctx.workdir.mkdir(parents=True, exist_ok=True)
            print(f"\n[{engine}] {name}", flush=True)
            began = time.perf_counter()
            run: Callable[[Context], list[Result]] = BENCHES[name].run
            try:
                found = run(ctx)
            except Exception:
                errors.append(f"{engine}/{name}")
                traceback.print_exc()
                found = []
            finally:
                if not args.keep:
                    ctx.cleanup()
            for result in found:
                results.append((engine, result))
                print(f"  {result.figure}: {result.shown()} [{result.target}] {result.verdict}")
            print(f"  ({time.perf_counter() - began:.0f} s)", flush=True)
    print(f"\nResults ({time.perf_counter() - started:.0f} s in all; work dir {workdir})\n")
    for line in table(results):
        print(line)
    if args.markdown:
        for engine in args.engine_list:
            print(f"\n### {engine}\n")
            print("\n".join(markdown(results, engine)))
    missed = [f"{e}/{r.bench}: {r.figure}" for e, r in results if r.passed is False]
    print(f"\n{len(missed)} figure(s) MISS their target" + (":" if missed else "."))
    for item in missed:
        print(f"  - {item}")
    if errors:
        print(f"ERRORS in: {', '.join(errors)}", file=sys.stderr)
        return 1
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
