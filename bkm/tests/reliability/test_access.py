"""Access: the tenant-isolation matrix over every API endpoint and dashboard page, CSRF on
session writes, throttling, token revocation and ``manage.py check --deploy``.

The endpoints and pages are read from the URL configuration, so a new one is in the matrix
without editing this file.
"""

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from balance_groups.services import api_client_revoke
from bkm.tests.reliability import figures
from bkm.tests.reliability.world import HOUR, T0, build_world, fingerprint, iso, token_client

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
WRITE_METHODS = ("post", "put", "patch", "delete")
# The object each API collection's detail routes are exercised with (from Side.ids).
DETAIL_IDS = {
    "group": "group",
    "rule": "rule",
    "booking": "booking",
    "run": "run",
    "clarification": "case",
    "scheme": "scheme",
}


@pytest.fixture(autouse=True)
def _private_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rel"}}
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


# Ids whose text other pages show anyway (a code both tenants have, a small number): not searched for.
NOT_UNIQUE_TEXT = {"group_code", "interchange"}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def api_routes() -> list[tuple[str, str, list[str], bool]]:
    """(name, path regex, methods, detail) for every API v1 endpoint."""
    routes = []
    for path, pattern in _walk(get_resolver().url_patterns):
        actions = getattr(pattern.callback, "actions", None)
        if not path.startswith(API_PREFIX) or not actions:
            continue
        routes.append((pattern.name, path, sorted(actions), "(?P<" in path))
    return routes


def api_url(path: str, name: str, ids: dict) -> str:
    url = "/" + path.replace("^", "").replace("$", "")
    if "(?P<" not in url:
        return url
    return re.sub(r"\(\?P<\w+>[^)]*\)", ids[DETAIL_IDS[name.split("-")[0]]], url)


def _body(name: str, world, side) -> dict:
    """A body the owner could send (so a refusal is about the principal, not the input)."""
    window = {"start": iso(T0), "end": iso(T0 + HOUR)}
    return {
        "group-list": {"code": "NEW-1", "name": "Neu", "kind": "consumer", "valid_from": iso(T0)},
        "group-detail": {"name": "Umbenannt"},
        "group-close": {"until": iso(T0 + 2 * HOUR)},
        "rule-list": {
            "group": side.ids["group"],
            "targets": [{"parent": str(side.groups["HOUSE"].pk), "share": 10000}],
        },
        "booking-list": {
            "source": str(side.groups["PV-ROOF"].pk),
            "destination": side.ids["group"],
            **window,
            "energy_wh": 10,
        },
        "booking-bulk": {
            "bookings": [
                {"source": str(side.groups["PV-ROOF"].pk), "destination": side.ids["group"], **window, "energy_wh": 3}
            ]
        },
        "run-list": window,
        "measurement-bulk": {"measurements": [{"group": side.ids["group"], "start": iso(T0), "energy_wh": 7}]},
        "scheme-list": {
            "code": "NEU",
            "name": "Neu",
            "method": "static",
            "sources": [str(side.groups["PV-ROOF"].pk)],
            "consumers": [{"group": side.ids["group"], "share": 10000}],
            "surplus_to": str(side.groups["HOUSE"].pk),
            "residual_from": str(side.groups["GRID-IMPORT"].pk),
        },
        "clarification-resolve": {"action": "dismiss", "note": "nicht meins"},
    }.get(name, {})


QUERIES = {
    "group-balance": {"start": iso(T0), "end": iso(T0 + 2 * HOUR), "resolution": "1h"},
    "scheme-allocation": {"start": iso(T0), "end": iso(T0 + 4 * HOUR), "resolution": "1h"},
    # Both tenants have an APT-1 and a HOUSE: each reads its own.
    "statement-list": {"consumer": "APT-1", "month": f"{T0:%Y-%m}"},
    "statement-site": {"site": "HOUSE", "month": f"{T0:%Y-%m}"},
}


def _send(client, method: str, url: str, body: dict, name: str = ""):
    if method == "get":
        return client.get(url, QUERIES.get(name, {}))
    return getattr(client, method)(url, body, format="json")


def test_api_isolation_matrix():
    world = build_world()
    owner, other = world.owner, world.other
    before = {"owner": fingerprint(owner.tenant), "other": fingerprint(other.tenant)}
    owner_ids = {value for key, value in owner.ids.items() if key not in NOT_UNIQUE_TEXT}
    owner_ids |= {str(group.pk) for group in owner.groups.values()}
    routes = api_routes()
    assert len(routes) >= 15, routes
    checked = 0
    problems = []

    def expect(principal, method, url, response, statuses, code=None):
        nonlocal checked
        checked += 1
        if method == "head":
            code = None  # a HEAD answer has the GET answer's status and headers but never a body
        is_json = response.get("Content-Type", "").startswith("application/json") and response.content
        body = response.json() if is_json else None
        if response.status_code not in statuses or (code and (body or {}).get("code") != code):
            problems.append(f"{principal} {method.upper()} {url}: {response.status_code} {str(body)[:200]}")

    for name, path, methods, detail in routes:
        url = api_url(path, name, owner.ids)
        for method in methods:
            body = _body(name, world, owner)
            for principal in ("anonymous", "revoked"):
                response = _send(world.clients[principal], method, url, body, name)
                expect(principal, method, url, response, {401}, "NOT_AUTHENTICATED")
            response = _send(world.clients["no_tenant_session"], method, url, body, name)
            expect("no_tenant_session", method, url, response, {403}, "PERMISSION_DENIED")
            if method in WRITE_METHODS:
                response = _send(world.clients["read_only"], method, url, body, name)
                expect("read_only", method, url, response, {403}, "PERMISSION_DENIED")
            for principal in ("other_tenant", "other_session"):
                response = _send(world.clients[principal], method, url, body, name)
                if detail and response.status_code == 405:
                    # The method is refused before any object is looked up: so it is for the owner.
                    owner_response = _send(world.clients["owner"], method, url, body, name)
                    expect(principal, method, url, owner_response, {405}, "METHOD_NOT_ALLOWED")
                elif detail:
                    expect(principal, method, url, response, {404}, "NOT_FOUND")
                else:
                    # Lists and creates work within the caller's own tenant; none of the owner's rows
                    # leaks (an error may quote the ids the caller sent itself).
                    checked += 1
                    text = response.content.decode()
                    sent = str(_body(name, world, owner))
                    leaked = sorted(i for i in owner_ids if i in text and i not in sent)
                    if response.status_code >= 500 or leaked:
                        problems.append(f"{principal} {method.upper()} {url}: {response.status_code} leaks {leaked}")
            if method == "get":
                response = _send(world.clients["owner"], method, url, body, name)
                expect("owner", method, url, response, {200})
    assert problems == [], "\n".join(problems)
    after_owner = fingerprint(owner.tenant)
    assert after_owner == before["owner"], "another principal changed the owner's data"
    figures.add("access_checks", checked)
    figures.put("api_routes", len(routes))
    figures.put("api_operations", sum(len(methods) for _, _, methods, _ in routes))


def test_list_counts_do_not_include_another_tenants_rows():
    world = build_world()
    for collection, key in (
        ("balance-groups", "id"),
        ("bookings", "id"),
        ("settlement-rules", "id"),
        ("clarifications", "id"),
        ("settlement-runs", "id"),
        ("ledger-lines", "booking"),
        ("measurements", "group"),
        ("allocation-schemes", "id"),
    ):
        mine = world.clients["owner"].get(f"/api/v1/{collection}/?page_size=1000")
        theirs = world.clients["other_tenant"].get(f"/api/v1/{collection}/?page_size=1000")
        assert mine.status_code == theirs.status_code == 200
        mine_ids = {str(row[key]) for row in mine.json()["results"]}
        their_ids = {str(row[key]) for row in theirs.json()["results"]}
        assert mine_ids and their_ids and not mine_ids & their_ids, collection
        figures.add("access_checks", 2)
    response = world.clients["other_tenant"].get("/api/v1/imbalances/", {"group": world.owner.ids["group"]})
    assert response.status_code in (200, 400, 404)
    if response.status_code == 200:
        assert response.json()["results"] == []


# -- the dashboard -------------------------------------------------------------------------


def dashboard_routes() -> list[tuple[str, str]]:
    routes = []
    for path, pattern in _walk(get_resolver().url_patterns):
        # set_language only stores a choice of language, for anyone (Django's own view).
        if path.startswith(("api/", "admin/")) or pattern.name in ("login", "logout", "set_language"):
            continue
        routes.append((pattern.name, path))
    return routes


def dashboard_url(path: str, ids: dict) -> str:
    url = "/" + path
    url = url.replace("<str:ref>", ids["group"])  # by id: the other tenant has a group with the same code
    url = url.replace("<path:code>", ids["scheme_code"])
    url = url.replace("<str:code>", ids["group"])  # a statement's consumer, by id like <str:ref>
    url = url.replace("<str:month>", f"{T0:%Y-%m}")
    if "bookings/" in url:
        url = url.replace("<uuid:pk>", ids["booking"])
    url = url.replace("<int:pk>", ids["interchange"])  # the only pages addressed by a number
    return url.replace("<uuid:pk>", ids["case"])


def test_dashboard_isolation_matrix():
    world = build_world()
    owner, _other = world.owner, world.other
    before = fingerprint(owner.tenant)
    owner_texts = {value for key, value in owner.ids.items() if key not in NOT_UNIQUE_TEXT}
    owner_texts |= {str(group.pk) for group in owner.groups.values()} | {"Eigentum"}
    clients = {}
    for name in ("owner_user", "other_user", "no_tenant_user"):
        clients[name] = Client()
        clients[name].force_login(world.users[name])
    clients["anonymous"] = Client()
    routes = dashboard_routes()
    assert len(routes) >= 12, routes
    checked = 0
    problems = []
    for _name, path in routes:
        url = dashboard_url(path, owner.ids)
        object_page = "<" in path
        for method in ("get", "post"):
            # The owner only reads (its own empty posts would be real actions, e.g. finalizing).
            responses = {
                principal: getattr(client, method)(url, {})
                for principal, client in clients.items()
                if method == "get" or principal != "owner_user"
            }
            checked += len(responses)
            statuses = {principal: response.status_code for principal, response in responses.items()}
            if statuses["anonymous"] != 302 or "/login/" not in responses["anonymous"].get("Location", ""):
                problems.append(f"anonymous {method} {url}: {statuses['anonymous']}")
            if statuses["no_tenant_user"] != 403:
                problems.append(f"no tenant {method} {url}: {statuses['no_tenant_user']}")
            if any(status >= 500 for status in statuses.values()):
                problems.append(f"{method} {url}: {statuses}")
            other_status = statuses["other_user"]
            if object_page:
                # Another tenant's object: 404, exactly like one that does not exist (405 only where
                # the owner gets 405 too: the method is refused before any object is looked up).
                refused_method = other_status == 405 and clients["owner_user"].get(url).status_code == 405
                if other_status != 404 and not (method == "get" and refused_method):
                    problems.append(f"other tenant {method} {url}: {other_status}")
            elif other_status == 200:
                text = responses["other_user"].content.decode()
                leaked = sorted(t for t in owner_texts if t in text)
                if leaked:
                    problems.append(f"other tenant {method} {url} shows {leaked}")
            if method == "get" and statuses["owner_user"] not in (200, 405):
                problems.append(f"owner GET {url}: {statuses['owner_user']}")
    assert problems == []
    # The owner's own empty POSTs may be refused as invalid forms, but nothing of the owner's data
    # changed through anyone else.
    after = fingerprint(owner.tenant)
    assert after["bookings"] == before["bookings"] and after["cases"] == before["cases"]
    figures.add("access_checks", checked)
    figures.put("dashboard_routes", len(routes))


# -- CSRF, throttling, revocation ----------------------------------------------------------


def test_csrf_is_enforced_on_session_writes():
    world = build_world()
    user = world.users["owner_user"]
    before = fingerprint(world.owner.tenant)
    # The API with a session: no CSRF token, no write.
    api = world.clients["owner_session"].__class__(enforce_csrf_checks=True)
    api.force_login(user)
    body = {
        "source": "PV-ROOF",
        "destination": "APT-1",
        "start": iso(T0 + 2 * HOUR),
        "end": iso(T0 + 3 * HOUR),
        "energy_wh": 1,
    }
    response = api.post("/api/v1/bookings/", body, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "PERMISSION_DENIED" and "CSRF" in response.json()["detail"]
    # The dashboard: a form post without the token is refused, with it accepted.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    close_url = "/groups/HOUSE/close/"
    refused = browser.post(close_url, {"until": "2026-03-02T05:00"})
    assert refused.status_code == 403
    assert fingerprint(world.owner.tenant) == before
    browser.get(close_url)
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(close_url, {"until": "2026-03-02T05:00", "csrfmiddlewaretoken": token})
    assert accepted.status_code in (200, 302)
    # Token clients are not cookie-based: no CSRF token needed.
    assert world.clients["owner"].post("/api/v1/bookings/", body, format="json").status_code == 201
    figures.add("access_checks", 4)


def test_throttling_answers_429_with_retry_after(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"client": "5/min", "bulk": "2/min"},
    }
    world = build_world()
    client = world.clients["owner"]
    statuses = [client.get("/api/v1/balance-groups/").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    throttled = client.get("/api/v1/bookings/")
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "THROTTLED"
    assert int(throttled["Retry-After"]) >= 1
    # Per client: another client of the same tenant still has its budget.
    assert world.clients["read_only"].get("/api/v1/balance-groups/").status_code == 200
    # Bulk has its own, smaller budget.
    bulk = [client.post("/api/v1/bookings/bulk", {"bookings": []}, format="json").status_code for _ in range(3)]
    assert bulk[:2] == [200, 200] and bulk[2] == 429
    figures.add("access_checks", 11)


def test_a_revoked_token_is_refused_at_once():
    from balance_groups.models import ApiClient
    from balance_groups.services import api_client_create

    world = build_world()
    client_row, key = api_client_create(tenant=world.owner.tenant, name="to-revoke")
    client = token_client(key)
    assert client.get("/api/v1/balance-groups/").status_code == 200
    api_client_revoke(client=ApiClient.objects.get(pk=client_row.pk), actor="system:test")
    response = client.get("/api/v1/balance-groups/")
    assert response.status_code == 401
    assert response.json()["code"] == "NOT_AUTHENTICATED"
    assert client.post("/api/v1/settlement-runs/", {"start": iso(T0), "end": iso(T0 + HOUR)}).status_code == 401
    figures.add("access_checks", 3)


# -- production settings ------------------------------------------------------------------


def _manage(*args, **env_overrides) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "BKM_"))}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "BKM_PRODUCTION": "1",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k3+Xq!vZ9#pL2@wR7$tN5%yB8^hM4&cF6*jD1(sG0)eA-uI=oK_" + "x" * 20,
    "DJANGO_ALLOWED_HOSTS": "bkm.example.org",
}


def test_check_deploy_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output and "ERROR" not in output, output
    assert "no issues" in output
    figures.add("access_checks")


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", **{**PRODUCTION, "DJANGO_SECRET_KEY": ""})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stdout + result.stderr


def test_production_settings_are_hardened():
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0, "
        "s.SECURE_SSL_REDIRECT, s.ALLOWED_HOSTS)"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "BKM_"))}
    env.update(PRODUCTION, DJANGO_SETTINGS_MODULE="bkm.settings")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False True True True True ['bkm.example.org']"


DEFAULT_PASSWORD_PATTERNS = re.compile(
    r"(password|passwd|secret)\s*[:=]\s*['\"](admin|password|changeme|secret|1234)", re.I
)


def test_no_default_passwords_in_the_code_or_settings():
    """No shipped credential: nothing in settings, demo data or docs sets a well-known password."""
    root = settings.BASE_DIR
    offenders = []
    for path in root.rglob("*"):
        if any(part in (".venv", "node_modules", ".git", "staticfiles", "tests", "test-output") for part in path.parts):
            continue
        if path.suffix not in (".py", ".md", ".env", ".toml", ".cfg", ".yml", ".yaml", ".sh") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), start=1):
            if DEFAULT_PASSWORD_PATTERNS.search(line):
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()[:120]}")
    assert offenders == []
