"""The benchmarks' PostgreSQL database: created on the local server when it answers."""

from __future__ import annotations

import os
import sys


def bench_database(name: str) -> str:
    """postgres://… of database `name` (created if missing) on 127.0.0.1:5432, or '' (use SQLite)
    when the server does not answer. BH_BENCH_DB_SUFFIX keeps runs on a shared server apart."""
    name += os.environ.get("BH_BENCH_DB_SUFFIX", "")
    try:
        import psycopg

        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3
        ) as c:
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                c.execute(f'CREATE DATABASE "{name}"')
        return f"postgres://postgres@127.0.0.1:5432/{name}"
    except Exception as exc:
        print(f"PostgreSQL not reachable ({exc.__class__.__name__}); using SQLite", file=sys.stderr)
        return ""
