"""Headless Chromium (Debian's package, driven by Playwright) against the live server.

Logs in, opens the overview and a group page, checks that the charts were drawn with their
data points, changes a settlement rule, uploads a CSV, and saves screenshots in test-output/.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from dashboard.tests.conftest import DAY, PASSWORD
from dashboard.tests.scheme_site import build_scheme_site
from settlement.models import SettlementRule
from transactions.models import Booking

CHROMIUM = os.environ.get("BKM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = Path(settings.BASE_DIR) / "test-output"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        message = f"needs Chromium at {CHROMIUM} (scripts/install-browser.sh installs it)"
        if os.environ.get("BKM_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    OUTPUT.mkdir(exist_ok=True)
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("console", lambda message: errors.append(message.text) if _is_error(message) else None)
    tab.js_errors = errors
    yield tab
    context.close()


def _is_error(message) -> bool:
    # A refused form answers 400/409 on purpose; anything else logged as an error (a missing
    # asset, a script error) fails the test.
    return message.type == "error" and "status of 400" not in message.text and "status of 409" not in message.text


def shot(page, name: str) -> None:
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def log_in(page) -> None:
    page.goto("/")
    assert "/login/" in page.url
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "01-login")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


def chart_points(page, canvas_id: str) -> list[dict]:
    page.wait_for_function("document.body.dataset.chartsReady === '1'")
    return page.evaluate(
        """(id) => {
            const chart = Chart.getChart(id);
            return chart.data.datasets.map((set, i) => ({
                label: set.label,
                points: set.data.length,
                drawn: chart.getDatasetMeta(i).data.length,
                nonzero: set.data.filter((v) => v !== 0).length,
                sum: set.data.reduce((a, b) => a + b, 0),
            }));
        }""",
        canvas_id,
    )


def test_overview_and_group_page_draw_their_charts(page, flows, site):
    log_in(page)
    page.goto(f"/?day={DAY.isoformat()}")
    hierarchy = page.get_by_test_id("hierarchy")
    for code in ("GRID-CONNECTION", "APT", "PV", "SUPPLIER"):
        assert hierarchy.get_by_role("link", name=code, exact=True).is_visible()
    residual = chart_points(page, "residual-chart")
    assert residual[0]["points"] == residual[0]["drawn"] == 96
    figures = page.get_by_test_id("figures").inner_text()
    assert "Grid import\t0.200\xa0kWh" in figures and "Grid export\t0.100\xa0kWh" in figures
    shot(page, "02-overview")

    page.get_by_test_id("hierarchy").get_by_role("link", name="APT", exact=True).click()
    page.wait_for_url(f"**/groups/{site['APT'].pk}/")
    page.goto(f"/groups/{site['APT'].pk}/?day={DAY.isoformat()}")
    series = {entry["label"].split(" ")[0]: entry for entry in chart_points(page, "balance-chart")}
    assert series["Inflow"]["points"] == series["Inflow"]["drawn"] == 96
    assert series["Inflow"]["nonzero"] == 4 and series["Inflow"]["sum"] == 600
    assert series["Outflow"]["sum"] == -600  # drawn below zero
    assert "provisional" in page.get_by_test_id("bookings").inner_text()
    shot(page, "03-group-day")

    page.get_by_role("link", name="Next day →").click()
    page.wait_for_url("**day=2026-03-11**")
    assert chart_points(page, "balance-chart")[0]["points"] == 96
    page.goto(f"/groups/{site['PV'].pk}/?day=2026-03-29")
    assert chart_points(page, "balance-chart")[0]["points"] == 92
    page.get_by_label("Status").select_option("final")
    page.wait_for_url("**status=final**")
    assert page.js_errors == []


def test_change_a_rule_refusal_then_success(page, site):
    log_in(page)
    page.goto(f"/groups/{site['APT'].pk}/rule/")
    assert "takes effect at" in page.get_by_test_id("rule-timing").inner_text()
    page.get_by_label("Parent balance 1").select_option(label="HOUSE: Haus")
    page.get_by_label("Share 1 (%)").fill("60")
    page.get_by_role("button", name="Change rule").click()
    error = page.locator(".has-error .error").first
    assert "they must add up to exactly 100 %" in error.inner_text()
    assert page.get_by_label("Share 1 (%)").input_value() == "60"  # kept
    shot(page, "04-rule-refused")

    page.get_by_label("Parent balance 2").select_option(label="GRID-CONNECTION: Netzanschluss")
    page.get_by_label("Share 2 (%)").fill("40")
    page.get_by_label("Interval").select_option("1h")
    page.get_by_role("button", name="Change rule").click()
    page.wait_for_url(f"**/groups/{site['APT'].pk}/")
    assert "New rule for APT takes effect at" in page.locator(".msg-success").inner_text()
    shot(page, "05-rule-changed")
    latest = SettlementRule.objects.filter(group=site["APT"]).order_by("-effective_from").first()
    assert latest.interval == "1h"
    assert sorted(t.share for t in latest.targets.all()) == [4000, 6000]
    assert page.js_errors == []


def test_upload_a_csv_with_preview(page, site, tmp_path):
    csv_file = tmp_path / "values.csv"
    csv_file.write_text(
        "source;destination;start;end;energy_wh;status;external_id\n"
        "PV;APT;2026-03-10T10:00:00+01:00;2026-03-10T11:00:00+01:00;1000;provisional;csv-1\n"
        "SUPPLIER;APT;2026-03-10T10:00:00+01:00;2026-03-10T10:15:00+01:00;250;final;csv-2\n"
        "PV;APT;2026-03-10T10:05:00+01:00;2026-03-10T10:15:00+01:00;5;provisional;csv-3\n"
    )
    log_in(page)
    page.get_by_role("link", name="CSV import").click()
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_role("button", name="Preview (dry run)").click()
    result = page.get_by_test_id("csv-result")
    assert "Preview: nothing was written" in result.inner_text()
    assert "3 rows read" in result.inner_text()
    errors = page.get_by_test_id("csv-errors").inner_text()
    assert "4\tINVALID_TIME_ALIGNMENT" in errors
    assert not Booking.objects.filter(external_id__startswith="csv-").exists()
    shot(page, "06-csv-preview")

    page.get_by_role("button", name="Import 2 valid rows").click()
    result = page.get_by_test_id("csv-result")
    assert "Imported" in result.inner_text()
    assert "2 created" in result.inner_text()
    shot(page, "07-csv-imported")
    assert sorted(Booking.objects.filter(external_id__startswith="csv-").values_list("external_id", flat=True)) == [
        "csv-1",
        "csv-2",
    ]
    assert page.js_errors == []


def test_every_page_passes_the_content_security_policy(page, flows, site, admin_user, operator):
    """No inline script or style anywhere: the dashboard, admin and Swagger UI load and run under
    the CSP with no violation in Chromium's console."""
    build_scheme_site(site, operator)
    violations = []

    def watch(message):
        if "Content Security Policy" in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", watch)
    response = page.request.get("/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    log_in(page)
    apt = site["APT"].pk
    for path in (
        f"/?day={DAY.isoformat()}",
        f"/groups/{apt}/?day={DAY.isoformat()}",
        f"/groups/{apt}/?day={DAY.isoformat()}&span=week",
        f"/groups/{apt}/edit/",
        f"/groups/{apt}/close/",
        f"/groups/{apt}/rule/",
        "/groups/new/",
        f"/imbalances/?day={DAY.isoformat()}",
        "/clarifications/",
        "/settlement/runs/",
        "/import/",
        "/schemes/",
        f"/schemes/HAUS/?day={DAY.isoformat()}",
        f"/schemes/HAUS/?day={DAY.isoformat()}&span=week",
        f"/schemes/HAUS/?day={DAY.isoformat()}&span=month",
        "/schemes/HAUS/new-version/",
        "/schemes/new/",
    ):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    page.goto(f"/groups/{apt}/?day={DAY.isoformat()}")
    page.wait_for_function("document.body.dataset.chartsReady === '1'")  # the charts ran
    assert chart_points(page, "consumer-chart")[0]["points"] == 96
    page.goto(f"/schemes/HAUS/?day={DAY.isoformat()}")
    assert [len(chart_points(page, f"scheme-chart-{i}")) for i in (0, 1)] == [4, 4]  # APT, APT-2, surplus, gap

    page.context.clear_cookies()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    for path in (
        "/admin/",
        "/admin/balance_groups/balancegroup/",
        f"/admin/balance_groups/balancegroup/{apt}/change/",
        "/admin/transactions/booking/",
        "/admin/settlement/settlementrule/",
        "/admin/settlement/imbalance/",
    ):
        page.goto(path)
        page.wait_for_load_state("networkidle")

    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)  # Swagger UI rendered the operations
    shot(page, "09-swagger-under-csp")
    assert violations == []
