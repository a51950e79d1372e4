"""The listing triggers' refresh (migration 0011) runs without JIT compilation.

PostgreSQL compiles a query to machine code when its estimated cost passes `jit_above_cost`. A
refresh rebuilds a few hundred list items per statement, a few milliseconds of work; but before
the tables have planner statistics (a new install's first poll, a restore, a bulk load that
autovacuum has not analysed yet) the estimate of the per-binding subqueries is thousands of times
too high, and each refresh spent ~300 ms compiling: a first poll of 10,000 bindings cost the
database 55 s of CPU instead of 4 s (docs/performance.md, "Writes"). Compiling never pays off
for a query this short, whatever the estimate.
"""

from __future__ import annotations

from django.db import migrations

FUNCTIONS = ("bh_listing_refresh(bigint[])", "bh_listing_json(bigint)")


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for function in FUNCTIONS:
        schema_editor.execute(f"ALTER FUNCTION {function} SET jit = off", None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for function in FUNCTIONS:
        schema_editor.execute(f"ALTER FUNCTION {function} RESET jit", None)


class Migration(migrations.Migration):
    dependencies = [
        ("bindings", "0011_api_binding_listing"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
