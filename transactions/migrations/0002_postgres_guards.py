from django.db import migrations

from core.db import PostgresOnlySQL, aligned_check_sql

# Final bookings and their lines never change: corrections are reversal bookings. The trigger
# holds even for raw SQL, the admin or COPY-based tools. TRUNCATE (test teardown) is not a row
# operation and stays possible for the database owner.
IMMUTABLE_FINAL = """
CREATE FUNCTION bkm_refuse_final_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'BOOKING_FINAL: % row % is final and cannot be changed or deleted', TG_TABLE_NAME, OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER booking_final_immutable
    BEFORE UPDATE OR DELETE ON transactions_booking
    FOR EACH ROW WHEN (OLD.status = 'final') EXECUTE FUNCTION bkm_refuse_final_change();
CREATE TRIGGER line_final_immutable
    BEFORE UPDATE OR DELETE ON transactions_ledgerline
    FOR EACH ROW WHEN (OLD.is_final) EXECUTE FUNCTION bkm_refuse_final_change();
"""

DROP_IMMUTABLE_FINAL = """
DROP TRIGGER line_final_immutable ON transactions_ledgerline;
DROP TRIGGER booking_final_immutable ON transactions_booking;
DROP FUNCTION bkm_refuse_final_change();
"""


class Migration(migrations.Migration):
    dependencies = [("transactions", "0001_initial")]

    operations = [
        aligned_check_sql("transactions_booking", "booking_instants_aligned", '"start"', '"end"'),
        aligned_check_sql("transactions_ledgerline", "line_quarter_aligned", "quarter_start"),
        PostgresOnlySQL(IMMUTABLE_FINAL, DROP_IMMUTABLE_FINAL),
    ]
