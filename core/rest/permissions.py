"""Who may call the API: authenticated principals of a tenant; read-only clients only read."""

from rest_framework.permissions import SAFE_METHODS, BasePermission


class TenantPrincipal(BasePermission):
    """An API client or a user that belongs to a tenant; the tenant is taken from it alone."""

    message = "Your account does not belong to a tenant."

    def has_permission(self, request, view):
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False):
            return False
        return getattr(user, "tenant_id", None) is not None


class WriteAllowed(BasePermission):
    """Read-only API clients get 403 on every write."""

    message = "This API client is read-only."

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return not getattr(request.user, "read_only", False)
