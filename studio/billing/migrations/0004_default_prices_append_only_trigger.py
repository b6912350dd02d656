from datetime import UTC, datetime

from django.db import migrations

# PostgreSQL refuses any UPDATE or DELETE of a ledger row, whatever the code asks for.
# (TRUNCATE, which only test teardown uses, is not a row operation.)
APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION billing_entry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'billing_entry is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_entry_append_only BEFORE UPDATE OR DELETE ON billing_entry
    FOR EACH ROW EXECUTE FUNCTION billing_entry_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS billing_entry_append_only ON billing_entry;
DROP FUNCTION IF EXISTS billing_entry_append_only();
"""

DEFAULT_PRICES = {"fibo": 40_000, "rmbg": 18_000}


def default_prices(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    for model, amount in DEFAULT_PRICES.items():
        Price.objects.get_or_create(model=model, effective_from=datetime(2026, 1, 1, tzinfo=UTC),
                                    defaults={"amount": amount})


def append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def drop_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_topups_prices_entry_member")]

    operations = [
        migrations.RunPython(default_prices, migrations.RunPython.noop),
        migrations.RunPython(append_only, drop_append_only),
    ]
