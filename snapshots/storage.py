"""Raw storage helpers of the snapshot journal: the report INSERT with a server-side bound body, bulk
COPY of entry rows, closing entry ranges. PostgreSQL through psycopg 3, SQLite through the ORM cursor."""


from django.db import connection

from snapshots.models import Report, SnapshotEntry

# The conflict target of report_unique_idempotency_key (snapshots/models.py), partial index predicate included.
_KEY_CONFLICT = "ON CONFLICT (org_id, environment_id, idempotency_key) WHERE NOT (idempotency_key = '') DO NOTHING"


def insert_report(report: Report, *, unless_key_taken: bool = False) -> bool:
    """INSERT the report; True when inserted. On PostgreSQL the body goes as a binary parameter with
    server-side binding: Django's client-side binding would inline a 50 MB body as a 100 MB hex literal.

    ``unless_key_taken`` (PostgreSQL only): when a report with the same idempotency key exists, insert
    nothing and return False (``ON CONFLICT DO NOTHING``), where a plain INSERT raises IntegrityError and
    needs a savepoint (two more round trips) for the transaction to go on."""
    if connection.vendor != "postgresql":
        if unless_key_taken:
            raise ValueError("unless_key_taken needs PostgreSQL")
        report.save(force_insert=True)
        return True
    import psycopg

    fields = [f for f in Report._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(getattr(report, f.attname), connection) for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join("%b" if f.name == "payload" else "%s" for f in fields)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        conflict = _KEY_CONFLICT if unless_key_taken else ""
        cursor.execute(f"INSERT INTO snapshots_report ({columns}) VALUES ({placeholders}) {conflict} RETURNING id",  # noqa: S608 - model column names, values bound  # nosec B608
                       values)
        row = cursor.fetchone()
    if row is None:
        return False
    report.pk = row[0]
    report._state.adding = False
    return True


def copy_rows(model, columns: list[str], rows) -> None:
    """Bulk insert: PostgreSQL ``COPY`` (psycopg 3), else executemany."""
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # noqa: S608
                for row in rows:
                    copy.write_row(row)
        return
    placeholders = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",  # noqa: S608 - our table/column names, values bound  # nosec B608
                           list(rows))


def close_entries(entry_ids: list[int], index: int) -> None:
    if not entry_ids:
        return
    table = SnapshotEntry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"UPDATE {table} SET to_index = %s WHERE id = ANY(%s) AND to_index IS NULL",  # noqa: S608 - own table name, values bound  # nosec B608
                           [index, entry_ids])
        else:
            for start in range(0, len(entry_ids), 500):
                chunk = entry_ids[start:start + 500]
                cursor.execute(f"UPDATE {table} SET to_index = %s WHERE to_index IS NULL AND id IN "  # noqa: S608 - own table name, values bound  # nosec B608
                               f"({', '.join(['%s'] * len(chunk))})", [index, *chunk])
