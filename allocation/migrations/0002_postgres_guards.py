from django.db import migrations

from core.db import aligned_check_sql


class Migration(migrations.Migration):
    dependencies = [("allocation", "0001_initial")]

    operations = [
        aligned_check_sql("allocation_measurement", "measurement_quarter_aligned", "quarter_start"),
        aligned_check_sql("allocation_allocationbooking", "allocation_quarter_aligned", "quarter_start"),
        aligned_check_sql(
            "allocation_allocationscheme", "scheme_instants_aligned", "effective_from", "effective_until"
        ),
    ]
