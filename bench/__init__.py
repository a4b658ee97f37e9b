"""Outpost benchmarks: ``make bench`` (``python -m bench``), on SQLite and PostgreSQL.

Each benchmark module exposes ``NAME`` and ``run(ctx) -> list[Result]``; it creates
its own fresh database, migrates it with :func:`outpost.migrate.upgrade`, and
reports figures against the targets of the performance issue. See ``README.md``.
"""
