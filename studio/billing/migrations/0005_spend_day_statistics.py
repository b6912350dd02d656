from django.db import migrations

# The spend reports group the ledger by UTC day (TruncDate(..., tzinfo=UTC)). PostgreSQL
# keeps no statistics on that expression, so it guesses a group per row and sorts the
# whole period on disk; with these it knows there are a few hundred (day, model) groups
# and hash-aggregates in parallel, about twice as fast at a million entries (see README,
# "Benchmark"). Built by the ANALYZE below, then kept by autovacuum.
CREATE_SQL = """
CREATE STATISTICS IF NOT EXISTS billing_entry_utc_day_model
    ON ((created_at AT TIME ZONE 'UTC')::date), model FROM billing_entry;
ANALYZE billing_entry;
"""
DROP_SQL = "DROP STATISTICS IF EXISTS billing_entry_utc_day_model;"


def create_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_SQL, params=None)


def drop_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_default_prices_append_only_trigger")]

    operations = [migrations.RunPython(create_statistics, drop_statistics)]
