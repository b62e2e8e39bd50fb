"""API authentication: ``Authorization: Token <key>`` for API clients (one tenant each); ``Bearer <key>``
is taken alike, because that is what OpenAPI tools (Swagger UI's Authorize box) send for a pasted key."""

import datetime as dt

from django.utils import timezone
from rest_framework import authentication, exceptions

from balance_groups.models import ApiClient

LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class ApiClientTokenAuthentication(authentication.BaseAuthentication):
    """Looks the client up by the SHA-256 of its token; revoked tokens are refused (401).

    ``request.user`` becomes the :class:`ApiClient`, which carries ``tenant`` and ``read_only``.
    """

    keyword = "Token"
    keywords = (b"token", b"bearer")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: send 'Authorization: Token <key>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        client = ApiClient.objects.select_related("tenant").filter(key_hash=ApiClient.hash_key(key)).first()
        if client is None or client.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
            client.last_used_at = now
        return client, key

    def authenticate_header(self, request):
        return self.keyword
