from django.db import migrations

from core.db import aligned_check_sql


class Migration(migrations.Migration):
    dependencies = [("balance_groups", "0001_initial")]

    operations = [
        aligned_check_sql(
            "balance_groups_balancegroup", "group_instants_aligned", "valid_from", "valid_until", "closed_until"
        ),
    ]
