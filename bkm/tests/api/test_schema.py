"""The OpenAPI schema: generates without warnings, has every API.md path, documents errors."""

import os
import re

import pytest
from django.conf import settings
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

API_MD_PATHS = [
    "/api/v1/balance-groups/",
    "/api/v1/balance-groups/{id}/",
    "/api/v1/balance-groups/{id}/close",
    "/api/v1/balance-groups/{id}/balance",
    "/api/v1/settlement-rules/",
    "/api/v1/settlement-rules/{id}/",
    "/api/v1/bookings/",
    "/api/v1/bookings/{id}/",
    "/api/v1/bookings/{id}/finalize",
    "/api/v1/bookings/{id}/reverse",
    "/api/v1/bookings/bulk",
    "/api/v1/imbalances/",
    "/api/v1/settlement-runs/",
    "/api/v1/clarifications/",
    "/api/v1/clarifications/{id}/resolve",
    "/api/v1/measurements/",
    "/api/v1/measurements/bulk",
    "/api/v1/allocation-schemes/",
    "/api/v1/allocation-schemes/{id}/",
    "/api/v1/allocation-schemes/{id}/allocation",
    "/api/v1/measurements/mscons",
    "/api/v1/statements/",
]
API_MD = settings.BASE_DIR.parent / "shared" / "API.md"  # the spec beside the checkout


@pytest.fixture(scope="module")
def schema():
    GENERATOR_STATS.reset()
    generated = SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS, f"schema warnings/errors: {GENERATOR_STATS}"
    return generated


def test_schema_has_every_contract_path(schema):
    missing = [path for path in API_MD_PATHS if path not in schema["paths"]]
    assert not missing


def test_contract_doc_paths_are_all_covered():
    """Every path named in shared/API.md (beside the checkout) is in one of the lists above."""
    if not API_MD.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{API_MD} is missing: CI has the spec beside the checkout")
        pytest.skip(f"{API_MD} is not available here")
    named = set(re.findall(r"/api/v1/[a-z\-]+/(?:\{id\}/?)?[a-z]*", API_MD.read_text()))
    known = [path.rstrip("/") for path in API_MD_PATHS]
    unknown = [path for path in named if path.rstrip("/") not in known]
    assert named and not unknown


def test_every_operation_documents_the_error_shape(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for code in ("400", "401", "403", "429"):
                assert code in responses, (method, path, code)
                assert responses[code]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }
            assert "Retry-After" in responses["429"]["headers"]
            if method in ("post", "patch", "delete"):
                assert "409" in responses, (method, path)


def test_bulk_is_documented_with_examples(schema):
    bulk = schema["paths"]["/api/v1/bookings/bulk"]["post"]
    assert bulk["requestBody"]["content"]["application/json"]["examples"]
    assert set(schema["components"]["schemas"]["BulkResult"]["properties"]) == {
        "created",
        "replaced",
        "unchanged",
        "rejected",
    }


def test_schema_endpoint_and_docs_are_served_locally(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/v1/bookings/bulk" in response.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html


# -- Swagger UI: what it offers must work as offered -------------------------------------------------

MP_APT1 = "DE0001234567890000000000000000001"


@pytest.fixture
def example_site(make_group, tenant):
    """The groups the documented examples name."""
    from transactions.models import ClarificationCase, ClarificationReason

    groups = {
        code: make_group(code, kind, **extra)
        for code, kind, extra in [
            ("HOUSE", "balance", {}),
            ("HOUSE-B", "balance", {}),
            ("PV-ROOF", "source", {}),
            ("GRID-IMPORT", "source", {}),
            ("GRID-EXPORT", "consumer", {}),
            ("APT-1", "consumer", {"metering_point": MP_APT1}),
            ("APT-2", "consumer", {}),
            ("HEAT-PUMP", "consumer", {}),
        ]
    }
    case = ClarificationCase.objects.create(
        tenant=tenant,
        reason=ClarificationReason.GROUP_NOT_VALID,
        detail="The group was not valid then.",
        payload={
            "source": "PV-ROOF",
            "destination": "APT-1",
            "start": "2026-03-29T12:00:00Z",
            "end": "2026-03-29T12:15:00Z",
            "energy_wh": 100,
        },
    )
    return {"/api/v1/balance-groups/{id}/": "APT-1", "/api/v1/clarifications/{id}/": str(case.pk), **groups}


def _request_examples(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                for name, example in content.get("examples", {}).items():
                    yield path, method, media_type, name, example["value"]


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _unknown_fields(schema, node, value, where):
    node = _resolve(schema, node)
    if isinstance(value, dict):
        properties = node.get("properties", {})
        unknown = [f"{where}.{key}" for key in value if key not in properties]
        for key, item in value.items():
            if key in properties:
                unknown += _unknown_fields(schema, properties[key], item, f"{where}.{key}")
        return unknown
    if isinstance(value, list) and "items" in node:
        return [name for item in value for name in _unknown_fields(schema, node["items"], item, f"{where}[]")]
    return []


def test_every_request_body_has_examples(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            contents = operation.get("requestBody", {}).get("content", {})
            if contents:
                assert any(content.get("examples") for content in contents.values()), (method, path)


def test_request_examples_use_the_real_field_names(schema):
    for path, method, media_type, name, value in _request_examples(schema):
        if media_type != "application/json":
            continue
        body = schema["paths"][path][method]["requestBody"]["content"][media_type]["schema"]
        assert not _unknown_fields(schema, body, value, "body"), (method, path, name)
        assert "additionalProp1" not in str(value)


def test_every_documented_request_example_is_accepted(schema, api, example_site):
    from django.db import transaction

    examples = list(_request_examples(schema))
    assert len(examples) >= 15
    for path, method, media_type, name, value in examples:
        prefix = path.split("{id}")[0] + "{id}/"
        url = path.replace("{id}", example_site[prefix]) if "{id}" in path else path
        with transaction.atomic():
            if media_type == "application/json":
                response = getattr(api, method)(url, value, format="json")
            else:
                response = api.generic(method.upper(), url, value.encode("latin-1"), content_type=media_type)
            assert 200 <= response.status_code < 300, (method, path, name, response.content[:500])
            body = response.json()
            assert body.get("rejected", []) == [], (method, path, name, body["rejected"])
            transaction.set_rollback(True)


def test_every_parameter_is_described(schema):
    missing = [
        (method, path, parameter["in"], parameter["name"])
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if not parameter.get("description", "").strip()
    ]
    assert not missing


def test_the_token_is_offered_first(schema):
    assert next(iter(schema["components"]["securitySchemes"])) == "tokenAuth"
    token = schema["components"]["securitySchemes"]["tokenAuth"]
    assert (token["type"], token["scheme"]) == ("http", "bearer")  # Swagger UI sends "Bearer <pasted key>"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "tokenAuth" in operation["security"][0], (method, path)


def test_the_served_schema_keeps_the_token_first(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert list(response.json()["components"]["securitySchemes"]) == ["tokenAuth", "cookieAuth"]


def test_a_token_entered_in_swagger_ui_wins_over_a_logged_in_session(api_key, admin_user, example_site):
    """The docs page is often open while the browser is logged in (admin, dashboard): the token is
    tried first, so the request acts as the API client, and needs no CSRF token."""
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(admin_user)  # a staff user of no tenant: alone, it may not use the API
    assert browser.get("/api/v1/balance-groups/").status_code == 403
    for keyword in ("Token", "Bearer"):  # the documented keyword, and what Swagger UI sends for a pasted key
        browser.credentials(HTTP_AUTHORIZATION=f"{keyword} {api_key}")
        listed = browser.get("/api/v1/balance-groups/?code=APT-1")
        assert listed.status_code == 200 and listed.json()["results"][0]["code"] == "APT-1"
    created = browser.post(
        "/api/v1/balance-groups/",
        {"code": "APT-9", "name": "Apartment 9", "kind": "consumer", "valid_from": "2026-01-01T00:00:00Z"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][0].endswith("ApiClientTokenAuthentication")
