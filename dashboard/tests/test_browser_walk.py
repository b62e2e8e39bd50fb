"""Every dashboard page in headless Chromium, in German and English, at desktop and phone width:
no horizontal overflow, no console error, the page in the language asked for; a screenshot of each
in test-output/walk/ to look at."""

import pytest

from dashboard.tests.conftest import DAY, PASSWORD
from dashboard.tests.scheme_site import build_scheme_site
from dashboard.tests.test_browser import OUTPUT, _is_error, browser  # noqa: F401 (browser: the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": 1400, "phone": 390}
LANGUAGES = {"de": "de-DE", "en": "en-US"}
# A word of the navigation per language: the page was rendered in that language.
NAV_WORD = {"de": "Übersicht", "en": "Overview"}


def pages(site) -> dict:
    apt, day, month = site["APT"].pk, DAY.isoformat(), f"{DAY:%Y-%m}"
    top = site["GRID-CONNECTION"].code
    return {
        "overview": f"/?day={day}",
        "group": f"/groups/{apt}/?day={day}",
        "group-week": f"/groups/{apt}/?day={day}&span=week",
        "group-edit": f"/groups/{apt}/edit/",
        "group-close": f"/groups/{apt}/close/",
        "group-finalize": f"/groups/{apt}/finalize/",
        "rule": f"/groups/{apt}/rule/",
        "group-new": "/groups/new/",
        "bookings": "/bookings/",
        "imbalances": f"/imbalances/?day={day}",
        "clarifications": "/clarifications/",
        "runs": "/settlement/runs/",
        "csv-import": "/import/",
        "measurement-import": "/measurements/import/",
        "mscons-import": "/measurements/mscons/",
        "mscons-interchanges": "/measurements/mscons/interchanges/",
        "schemes": "/schemes/",
        "scheme": f"/schemes/HAUS/?day={day}",
        "scheme-month": f"/schemes/HAUS/?day={day}&span=month",
        "scheme-version": "/schemes/HAUS/new-version/",
        "scheme-new": "/schemes/new/",
        "statements": "/statements/",
        "statement": f"/statements/APT/{month}/",
        "site-month": f"/sites/{top}/{month}/",
        "month-close": f"/sites/{top}/{month}/close/",
    }


def overflow(tab) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when it fits)."""
    return tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_fits_and_speaks_the_language(browser, live_server, site, flows, operator, language):  # noqa: F811
    build_scheme_site(site, operator)
    found = []
    folder = OUTPUT / "walk"
    folder.mkdir(parents=True, exist_ok=True)
    for width_name, width in WIDTHS.items():
        context = browser.new_context(
            viewport={"width": width, "height": 900}, base_url=live_server.url, locale=LANGUAGES[language]
        )
        tab = context.new_page()
        errors = []
        tab.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        tab.on("console", lambda message, errors=errors: errors.append(message.text) if _is_error(message) else None)
        tab.goto("/login/")
        assert tab.evaluate("document.documentElement.lang") == language
        tab.fill("#id_username", "operator")
        tab.fill("#id_password", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url("**/")
        for name, path in pages(site).items():
            response = tab.goto(path)
            tab.wait_for_load_state("networkidle")
            tab.screenshot(path=str(folder / f"{language}-{width_name}-{name}.png"), full_page=True)
            if response.status != 200:
                found.append(f"{language} {width_name} {name}: HTTP {response.status}")
            if NAV_WORD[language] not in tab.inner_text("header"):
                found.append(f"{language} {width_name} {name}: navigation not in {language}")
            if (extra := overflow(tab)) > 0:
                found.append(f"{language} {width_name} {name}: {extra} px wider than the viewport")
            if errors:
                found.append(f"{language} {width_name} {name}: console: {errors[:2]}")
                errors.clear()
        context.close()
    assert not found, "\n".join(found)
