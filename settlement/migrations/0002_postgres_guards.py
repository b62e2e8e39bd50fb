from django.db import migrations

from core.db import aligned_check_sql


class Migration(migrations.Migration):
    dependencies = [("settlement", "0001_initial")]

    operations = [
        aligned_check_sql("settlement_settlementrule", "rule_instants_aligned", "effective_from", "effective_until"),
    ]
