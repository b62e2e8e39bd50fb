from django.core.management.base import BaseCommand, CommandError

from balance_groups.services import api_client_create, tenant_get_or_create


class Command(BaseCommand):
    help = "Create an API client for a tenant (created if needed) and print its token alone on stdout."

    def add_arguments(self, parser):
        parser.add_argument("tenant_code", help="The tenant's code, e.g. sonnenhof.")
        parser.add_argument("--name", default=None, help="The client's name (default: api-<tenant>).")
        parser.add_argument("--read-only", action="store_true", help="The client may only read.")

    def handle(self, *args, tenant_code, name, read_only, **options):
        code = tenant_code.strip()
        if not code:
            raise CommandError("TENANT_CODE must not be empty.")
        tenant, created = tenant_get_or_create(code=code)
        if created:
            self.stderr.write(f"Created tenant {tenant.code}.")
        _client, key = api_client_create(
            tenant=tenant, name=name or f"api-{tenant.code}", read_only=read_only, actor="system:cli"
        )
        self.stdout.write(key)
