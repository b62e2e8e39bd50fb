"""Rate limits per client (token) or user, kept in the default cache (Redis when configured).

Rates live in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (scopes ``client`` and ``bulk``) and
are read per request, so they can be changed by settings without re-importing this module.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class PrincipalRateThrottle(SimpleRateThrottle):
    scope = "client"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False):
            return None  # anonymous requests are refused with 401 anyway
        ident = f"{getattr(user, 'principal_kind', 'user')}:{user.pk}"
        return f"bkm:throttle:{self.scope}:{ident}"


class ClientRateThrottle(PrincipalRateThrottle):
    scope = "client"


class BulkRateThrottle(PrincipalRateThrottle):
    """Bulk ingestion has its own, smaller budget (and does not use up the client's)."""

    scope = "bulk"
