"""factory_boy factories for tests and the benchmark workload."""

import factory

from balance_groups.models import BalanceGroup, GroupKind, Tenant, User
from core.testing import T0


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: f"Tenant {o.code}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"operator{n}")
    tenant = factory.SubFactory(TenantFactory)
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BalanceGroup

    tenant = factory.SubFactory(TenantFactory)
    code = factory.Sequence(lambda n: f"G-{n}")
    name = factory.LazyAttribute(lambda o: f"Group {o.code}")
    kind = GroupKind.BALANCE
    valid_from = T0
