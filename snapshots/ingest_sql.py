"""Set-based ingest on PostgreSQL: canonicalize a stored report and diff it against the environment's
open entries in SQL, inside the ingest transaction, without loading the body into Python.

1. ``build_running_table``: the report's ``artifacts`` → temp table ``ingest_running`` (name,
   fingerprint, instance_count, instances JSON text), via ``jsonb_array_elements`` / ``jsonb_each_text``
   and one GROUP BY. A 150,000-pod body never becomes 150,000 Python objects.
2. ``build_changes_table``: one FULL OUTER JOIN against the open entries → temp table
   ``ingest_changes`` (started / exited / scaled with old and new counts).
3. ``write_changes``: close the exited and scaled entries (``to_index``), insert the started and scaled
   ones and the events: O(k) rows for k changes, each a single INSERT ... SELECT / UPDATE.

``services.ingest_report`` falls back to the Python path (snapshots.ingest) on other databases and when
PostgreSQL rejects the JSON (jsonb refuses ``\\u0000``, which Python accepts).
"""

import logging

from django.db import DataError, connection, transaction

from snapshots.choices import EnvironmentType

log = logging.getLogger(__name__)

_SORT_FIELD = {EnvironmentType.K8S: "podName", EnvironmentType.ECS: "taskArn", EnvironmentType.AZURE_APPS: "app_name",
               EnvironmentType.CLOUD_RUN: "revisionName"}


def _instance_sql(env_type: str) -> str:
    """SQL for one instance's JSON: the agent's entry without its digests (pod / task / app context and
    creation time), exactly as snapshots.ingest._instance keeps it."""
    return "(a.entry - 'digests')::text"


def build_running_table(report_id: int, env_type: str) -> bool:
    """Create ``ingest_running`` for a report. False (nothing created) when PostgreSQL rejects the JSON."""
    sort_field = _SORT_FIELD.get(env_type)
    sort_key = f"a.entry->>'{sort_field}'" if sort_field else "''"
    # Each entry's instance text and sort key are computed once per entry (a pod running n images
    # would otherwise serialize its JSON n times): ~10% of a 150,000-pod ingest.
    sql = f"""
        CREATE TEMP TABLE ingest_running ON COMMIT DROP AS
        WITH entries AS MATERIALIZED (
            SELECT {_instance_sql(env_type)} AS instance, {sort_key} AS sort_key, a.entry -> 'digests' AS digests
            FROM snapshots_report r
            CROSS JOIN LATERAL jsonb_array_elements(convert_from(r.payload, 'UTF8')::jsonb -> 'artifacts') AS a(entry)
            WHERE r.id = %s
        )
        SELECT d.key AS name, d.value AS fingerprint, count(*)::integer AS instance_count,
               '[' || string_agg(e.instance, ',' ORDER BY e.sort_key COLLATE "C") || ']' AS instances
        FROM entries e
        CROSS JOIN LATERAL jsonb_each_text(e.digests) AS d(key, value)
        GROUP BY d.key, d.value
    """  # noqa: S608 - only our own constant field names are interpolated
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS ingest_running")
        cursor.execute("DROP TABLE IF EXISTS ingest_changes")
        try:
            with transaction.atomic():
                cursor.execute(sql, [report_id])
        except DataError:
            log.warning("PostgreSQL rejected report %s as jsonb; ingesting it in Python", report_id, exc_info=True)
            return False
        cursor.execute("CREATE INDEX ON ingest_running (name, fingerprint)")
        cursor.execute("ANALYZE ingest_running")
    return True


def build_changes_table(environment_id: int) -> dict[str, int]:
    """Diff ``ingest_running`` against the open entries into ``ingest_changes``; return counts by kind."""
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE TEMP TABLE ingest_changes ON COMMIT DROP AS
            SELECT CASE WHEN e.id IS NULL THEN 'started' WHEN r.name IS NULL THEN 'exited' ELSE 'scaled' END AS kind,
                   coalesce(r.name, e.name) AS name, coalesce(r.fingerprint, e.fingerprint) AS fingerprint,
                   coalesce(e.instance_count, 0) AS old_count, coalesce(r.instance_count, 0) AS new_count,
                   e.id AS entry_id, e.running_since
            FROM ingest_running r
            FULL OUTER JOIN (SELECT id, name, fingerprint, instance_count, running_since
                             FROM snapshots_snapshotentry
                             WHERE environment_id = %s AND to_index IS NULL) e
              ON e.name = r.name AND e.fingerprint = r.fingerprint
            WHERE e.id IS NULL OR r.name IS NULL OR e.instance_count <> r.instance_count
        """, [environment_id])
        cursor.execute("SELECT kind, count(*) FROM ingest_changes GROUP BY kind")
        return dict(cursor.fetchall())


def running_stats() -> tuple[int, int, str]:
    """(artifact count, instance count, artifacts digest) of ``ingest_running``; the digest equals
    services.artifacts_digest (code-point order = COLLATE "C" byte order for UTF-8)."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT count(*), coalesce(sum(instance_count), 0),
                   encode(sha256(convert_to(coalesce(string_agg(
                       name || E'\\t' || fingerprint || E'\\t' || instance_count || E'\\n', ''
                       ORDER BY name COLLATE "C", fingerprint COLLATE "C"), ''), 'UTF8')), 'hex')
            FROM ingest_running
        """)
        count, instances, digest = cursor.fetchone()
        return count, int(instances), digest


def write_changes(org_id: int, environment_id: int, snapshot_id: int, index: int, when) -> None:
    """Close exited/scaled entries at ``index``, open started/scaled ones, and log the events."""
    with connection.cursor() as cursor:
        cursor.execute("""
            UPDATE snapshots_snapshotentry SET to_index = %s
            WHERE id IN (SELECT entry_id FROM ingest_changes WHERE kind IN ('exited', 'scaled'))
        """, [index])
        cursor.execute("""
            INSERT INTO snapshots_snapshotentry (org_id, environment_id, name, fingerprint, instance_count, instances,
                                                 running_since, from_index, to_index, change)
            SELECT %s, %s, c.name, c.fingerprint, r.instance_count, r.instances,
                   CASE WHEN c.kind = 'scaled' THEN c.running_since ELSE %s END, %s, NULL, c.kind
            FROM ingest_changes c JOIN ingest_running r ON r.name = c.name AND r.fingerprint = c.fingerprint
            WHERE c.kind IN ('started', 'scaled')
        """, [org_id, environment_id, when, index])
        cursor.execute("""
            INSERT INTO snapshots_snapshotevent (org_id, environment_id, snapshot_id, snapshot_index, created_at, kind,
                                                 name, fingerprint, old_count, new_count)
            SELECT %s, %s, %s, %s, %s, kind, name, fingerprint, old_count, new_count
            FROM ingest_changes
            ORDER BY CASE kind WHEN 'started' THEN 0 WHEN 'exited' THEN 1 ELSE 2 END,
                     name COLLATE "C", fingerprint COLLATE "C"
        """, [org_id, environment_id, snapshot_id, index, when])
        cursor.execute("DROP TABLE ingest_running")
        cursor.execute("DROP TABLE ingest_changes")


def drop_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS ingest_running")
        cursor.execute("DROP TABLE IF EXISTS ingest_changes")
