"""The API list's JSON per binding, built by PostgreSQL at write time (issue 16).

`BindingListing` holds each binding's item of `GET /api/v1/bindings` as JSON text, less what
belongs to its cluster (the name) or to the clock (data age, staleness), which the list query adds.
On PostgreSQL, statement-level triggers rewrite the rows of every binding whose row, result,
verdicts or findings a statement wrote — whoever wrote them: the poll, the admin, a test's
`bulk_create` — so the list never serves a stale item and no Python code has to remember to keep
it. On SQLite the table stays empty: the list is serialised in Python there.

The JSON matches what Django's JsonResponse with DjangoJSONEncoder writes for the same values
(`", "` and `": "` separators, the same key order, timestamps as `YYYY-MM-DDTHH:MM:SS[.mmm]Z`);
tests/test_api_list_sql.py holds the two paths to the same output.
"""

from django.db import migrations, models

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION bh_json_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- DjangoJSONEncoder: ISO 8601 in UTC, milliseconds only when there is a fraction, "Z".
    SELECT CASE WHEN t IS NULL THEN 'null' ELSE
        '"' || to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN extract(microseconds FROM t)::bigint % 1000000 = 0 THEN ''
                ELSE to_char(t AT TIME ZONE 'UTC', '.MS') END
        || 'Z"' END
$$;

CREATE OR REPLACE FUNCTION bh_listing_rows(ids bigint[]) RETURNS TABLE (binding_id bigint, json text)
LANGUAGE sql STABLE AS $$
    SELECT b.id,
        ', "namespace": ' || to_json(b.namespace)::text
        || ', "name": ' || to_json(b.name)::text
        || ', "uid": ' || to_json(b.uid)::text
        || ', "target_group_arn": ' || to_json(b.target_group_arn)::text
        || ', "target_type": ' || to_json(b.target_type)::text
        || ', "target_group_protocol": ' || to_json(b.target_group_protocol)::text
        || ', "verdict": ' || to_json(CASE WHEN r.analyzed_at IS NULL THEN 'unknown' ELSE r.worst_verdict END)::text
        || ', "max_severity": ' || to_json(CASE WHEN r.analyzed_at IS NULL THEN '' ELSE r.max_severity END)::text
        || ', "protocols": [' || coalesce((
            SELECT string_agg(
                '{"protocol": ' || to_json(v.protocol)::text
                || ', "port": ' || coalesce(v.port::text, 'null')
                || ', "verdict": ' || to_json(v.verdict)::text
                || ', "targets_total": ' || v.targets_total::text
                || ', "targets_admitted": ' || v.targets_admitted::text || '}',
                ', ' ORDER BY v.protocol)
            FROM bindings_protocolverdict v WHERE v.binding_id = b.id), '') || ']'
        || ', "findings": [' || coalesce((
            SELECT string_agg(
                '{"code": ' || to_json(f.code)::text
                || ', "severity": ' || to_json(f.severity)::text
                || ', "protocol": ' || to_json(f.protocol)::text || '}',
                ', ' ORDER BY f.code, f.protocol, f.id)
            FROM bindings_finding f WHERE f.binding_id = b.id), '') || ']'
        || ', "health": {"healthy": ' || coalesce(r.healthy, 0)::text
        || ', "unhealthy": ' || coalesce(r.unhealthy, 0)::text
        || ', "other": ' || coalesce(r.other, 0)::text || '}'
        || ', "analyzed_at": ' || bh_json_time(r.analyzed_at)
        || ', "changed_at": ' || bh_json_time(r.changed_at)
    FROM bindings_targetgroupbinding b
    LEFT JOIN bindings_bindingresult r ON r.binding_id = b.id
    WHERE b.id = ANY(ids)
$$;

-- One item built on the spot, for a listing row found missing at read time. PL/pgSQL, so the
-- planner keeps it opaque: inlined, the list query's planning took three times as long.
CREATE OR REPLACE FUNCTION bh_listing_json(binding bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT r.json FROM bh_listing_rows(ARRAY[binding]) r);
END $$;

CREATE OR REPLACE FUNCTION bh_listing_refresh(ids bigint[]) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO bindings_bindinglisting (binding_id, json)
    SELECT binding_id, json FROM bh_listing_rows(ids)
    ON CONFLICT (binding_id) DO UPDATE SET json = EXCLUDED.json
    WHERE bindings_bindinglisting.json IS DISTINCT FROM EXCLUDED.json
$$;

-- Result, verdict and finding rows carry binding_id; one function per event, as a statement
-- trigger's transition tables are named per event.
CREATE OR REPLACE FUNCTION bh_listing_child_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bh_listing_refresh(ARRAY(SELECT DISTINCT binding_id FROM new_rows));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bh_listing_child_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bh_listing_refresh(ARRAY(
        SELECT binding_id FROM new_rows UNION SELECT binding_id FROM old_rows));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bh_listing_child_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bh_listing_refresh(ARRAY(SELECT DISTINCT binding_id FROM old_rows));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bh_listing_binding_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bh_listing_refresh(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;

-- Only the columns the item shows: a poll that rewrites events or the raw object costs a join.
CREATE OR REPLACE FUNCTION bh_listing_binding_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bh_listing_refresh(ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (n.namespace, n.name, n.uid, n.target_group_arn, n.target_type, n.target_group_protocol)
            IS DISTINCT FROM
            (o.namespace, o.name, o.uid, o.target_group_arn, o.target_type, o.target_group_protocol)));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bh_listing_binding_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM bindings_bindinglisting WHERE binding_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;
"""

TRIGGERS = [
    (table, event, function)
    for table in ("bindings_bindingresult", "bindings_protocolverdict", "bindings_finding")
    for event, function in (
        ("INSERT", "bh_listing_child_inserted"),
        ("UPDATE", "bh_listing_child_updated"),
        ("DELETE", "bh_listing_child_deleted"),
    )
] + [
    ("bindings_targetgroupbinding", "INSERT", "bh_listing_binding_inserted"),
    ("bindings_targetgroupbinding", "UPDATE", "bh_listing_binding_updated"),
    ("bindings_targetgroupbinding", "DELETE", "bh_listing_binding_deleted"),
]

TRANSITIONS = {
    "INSERT": "NEW TABLE AS new_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}


def _trigger_name(table: str, event: str) -> str:
    return f"bh_listing_{table.removeprefix('bindings_')}_{event.lower()}"


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTIONS, None)
    for table, event, function in TRIGGERS:
        schema_editor.execute(
            f"CREATE TRIGGER {_trigger_name(table, event)} AFTER {event} ON {table} "
            f"REFERENCING {TRANSITIONS[event]} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
            None,
        )
    schema_editor.execute("SELECT bh_listing_refresh(ARRAY(SELECT id FROM bindings_targetgroupbinding))", None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, event, _function in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {_trigger_name(table, event)} ON {table}", None)
    for function in sorted({f for _t, _e, f in TRIGGERS}) + ["bh_listing_refresh", "bh_listing_json"]:
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}", None)
    schema_editor.execute("DROP FUNCTION IF EXISTS bh_listing_rows", None)
    schema_editor.execute("DROP FUNCTION IF EXISTS bh_json_time", None)


class Migration(migrations.Migration):
    dependencies = [
        ("bindings", "0010_lbfeatures_lb_fields"),
    ]

    operations = [
        migrations.CreateModel(
            name="BindingListing",
            fields=[
                ("binding_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("json", models.TextField()),
            ],
        ),
        migrations.RemoveIndex(
            model_name="targetgroupbinding",
            name="bindings_ta_cluster_2565cd_idx",
        ),
        migrations.AddIndex(
            model_name="targetgroupbinding",
            index=models.Index(fields=["cluster", "namespace", "name", "id"], name="bindings_tgb_list_order"),
        ),
        migrations.RunPython(install, uninstall),
    ]
