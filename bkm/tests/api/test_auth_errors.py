"""Authentication, permissions, throttling and the one error shape."""

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from balance_groups.factories import UserFactory
from balance_groups.models import ApiClient, Tenant
from transactions.tests.api import booking_payload

GROUPS = "/api/v1/balance-groups/"


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def test_token_authenticates_the_client_and_scopes_to_its_tenant(api, api_site):
    response = api.get(GROUPS)
    assert response.status_code == 200
    assert {group["code"] for group in response.json()["results"]} == {"HOUSE", "PV-ROOF", "GRID-IMPORT", "APT-1"}
    assert set(response.json()) >= {"next", "previous", "results"}


def test_anonymous_gets_401_with_challenge(anon, tenant):
    response = anon.get(GROUPS)
    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("header", ["Token not-a-key", "Token a b", "Token", "Token \u00e9\u00e9"])
def test_bad_tokens_get_401(anon, tenant, header):
    anon.credentials(HTTP_AUTHORIZATION=header)
    assert_error(anon.get(GROUPS), 401, "NOT_AUTHENTICATED")


def test_revoked_token_gets_401(api, api_key, tenant):
    ApiClient.objects.filter(key_hash=ApiClient.hash_key(api_key)).update(revoked_at=timezone.now())
    assert_error(api.get(GROUPS), 401, "NOT_AUTHENTICATED")


def test_last_used_is_recorded(api, api_key, tenant):
    api.get(GROUPS)
    assert ApiClient.objects.get(key_hash=ApiClient.hash_key(api_key)).last_used_at is not None


def test_session_user_with_tenant_is_scoped_to_it(session_api, api_site):
    response = session_api.get(GROUPS)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 4


def test_session_user_without_tenant_gets_403(db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(UserFactory(username="root", tenant=None, is_superuser=True))
    body = assert_error(client.get(GROUPS), 403, "PERMISSION_DENIED")
    assert "tenant" in body["detail"]


def test_read_only_client_reads_but_cannot_write(readonly_api, api_site):
    assert readonly_api.get(GROUPS).status_code == 200
    response = readonly_api.post(GROUPS, {"code": "X"}, format="json")
    assert_error(response, 403, "PERMISSION_DENIED")
    assert_error(readonly_api.post("/api/v1/bookings/", booking_payload(), format="json"), 403, "PERMISSION_DENIED")


def test_unknown_path_is_json_404(api):
    assert_error(api.get("/api/v1/nothing-here/"), 404, "NOT_FOUND")
    assert_error(api.get("/api/v2/balance-groups/"), 404, "NOT_FOUND")


def test_method_not_allowed_is_json_405(api, api_site):
    response = api.put(f"{GROUPS}PV-ROOF/", {}, format="json")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert_error(api.delete("/api/v1/bookings/bulk"), 405, "METHOD_NOT_ALLOWED")


def test_form_body_is_415(api, api_site):
    response = api.post(GROUPS, {"code": "X"})  # multipart
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_malformed_json_is_400_parse_error(api, api_site):
    response = api.post(GROUPS, data="{not json", content_type="application/json")
    assert_error(response, 400, "PARSE_ERROR")


def test_large_body_is_413(api, api_site, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/api/v1/bookings/bulk", {"bookings": [booking_payload()] * 50}, format="json")
    assert_error(response, 413, "REQUEST_TOO_LARGE")


def test_validation_errors_list_fields(api, api_site):
    response = api.post(GROUPS, {"code": "NEW", "kind": "nonsense"}, format="json")
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(body["errors"]) == {"name", "kind", "valid_from"}


def test_throttle_returns_429_with_retry_after(api, api_site, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"client": "3/min", "bulk": "1/min"},
    }
    for _ in range(3):
        assert api.get(GROUPS).status_code == 200
    response = api.get(GROUPS)
    assert_error(response, 429, "THROTTLED")
    assert int(response["Retry-After"]) >= 1


def test_bulk_has_its_own_scope(api, api_site, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"client": "2/min", "bulk": "1/min"},
    }
    assert api.post("/api/v1/bookings/bulk", {"bookings": []}, format="json").status_code == 200
    assert_error(api.post("/api/v1/bookings/bulk", {"bookings": []}, format="json"), 429, "THROTTLED")
    # The client's general budget is untouched by bulk requests.
    assert api.get(GROUPS).status_code == 200
    assert api.get(GROUPS).status_code == 200
    assert_error(api.get(GROUPS), 429, "THROTTLED")


def test_throttling_is_per_client(api, other_api, api_site, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"client": "1/min", "bulk": "1/min"},
    }
    assert api.get(GROUPS).status_code == 200
    assert api.get(GROUPS).status_code == 429
    assert other_api.get(GROUPS).status_code == 200


@pytest.mark.redis
def test_throttle_counts_live_in_the_shared_cache(api, api_site, settings):
    from django.conf import settings as live

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": live.REDIS_URL}
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"client": "2/min", "bulk": "1/min"},
    }
    from django.core.cache import cache

    key = f"bkm:throttle:client:client:{ApiClient.objects.get(name='gateway').pk}"
    cache.delete(key)
    try:
        assert api.get(GROUPS).status_code == 200
        assert api.get(GROUPS).status_code == 200
        assert api.get(GROUPS).status_code == 429
        assert len(cache.get(key)) == 2  # the request history is in Redis, shared by every process
    finally:
        cache.delete(key)


def test_create_api_client_command_prints_the_token_alone(db):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_client", "stadtwerk", "--name", "meter gateway", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert "\n" not in token and len(token) == 40
    client = ApiClient.objects.get(key_hash=ApiClient.hash_key(token))
    assert client.name == "meter gateway" and client.tenant == Tenant.objects.get(code="stadtwerk")
    assert not client.read_only


def test_create_api_client_command_read_only_and_existing_tenant(tenant):
    out = io.StringIO()
    call_command("create_api_client", tenant.code, "--read-only", stdout=out, stderr=io.StringIO())
    client = ApiClient.objects.get(key_hash=ApiClient.hash_key(out.getvalue().strip()))
    assert client.read_only and client.tenant == tenant
    assert Tenant.objects.filter(code=tenant.code).count() == 1
