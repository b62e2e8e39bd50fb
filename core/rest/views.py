"""The base of every API view: tenant from the principal, permissions, throttling, JSON only."""

from rest_framework import viewsets
from rest_framework.renderers import JSONRenderer

from core.rest.parsers import LimitedJSONParser
from core.rest.permissions import TenantPrincipal, WriteAllowed
from core.rest.throttles import ClientRateThrottle


class TenantViewMixin:
    permission_classes = [TenantPrincipal, WriteAllowed]
    throttle_classes = [ClientRateThrottle]
    parser_classes = [LimitedJSONParser]
    renderer_classes = [JSONRenderer]
    lookup_value_regex = "[^/]+"

    model = None  # the listed model; an empty queryset of it while the schema is generated

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.tenant_queryset()

    def tenant_queryset(self):
        raise NotImplementedError

    @property
    def tenant(self):
        return self.request.user.tenant

    @property
    def actor(self):
        return self.request.user


class TenantViewSet(TenantViewMixin, viewsets.GenericViewSet):
    pass
