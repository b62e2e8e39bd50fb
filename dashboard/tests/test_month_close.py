"""The month close page of a site: checklist first, explicit confirmation, refusals as form errors."""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from balance_groups.models import AuditEntry, BalanceGroup
from core.testing import iso
from dashboard.tests.conftest import local
from transactions.models import ClarificationCase, ClarificationReason

pytestmark = pytest.mark.django_db
UTC = dt.UTC
APRIL = dt.datetime(2026, 3, 31, 22, tzinfo=UTC)  # 2026-04-01 00:00 CEST: the end of March
SITE_CODES = ["APT", "GRID-CONNECTION", "HOUSE", "PV"]  # SUPPLIER is settled onto nothing: not the site's


def url(ref, month="2026-03") -> str:
    return reverse("dashboard:month-close", args=[ref, month])


def confirmed(codes=SITE_CODES, **extra) -> dict:
    return {"groups": codes, "confirm": "on", **extra}


def closed_until(tenant, codes=SITE_CODES) -> list:
    return [BalanceGroup.objects.get(tenant=tenant, code=code).closed_until for code in codes]


def flash(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_german_checklist_writes_its_days_the_german_way(client_in, site, flows):
    content = client_in.get(url("GRID-CONNECTION"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "APT hat 1 vorläufige Buchung im Zeitraum (erste am 10.03.2026)." in content
    assert "2026-03-10)" not in content


def test_the_page_shows_the_checklist_and_what_will_be_closed(client_in, site, flows):
    response = client_in.get(url("GRID-CONNECTION"))
    assert response.status_code == 200
    checklist = response.context["checklist"]
    assert [row["code"] for row in checklist["to_close"]] == SITE_CODES
    blocker = checklist["blockers"][0]
    assert blocker["kind"] == "provisional_bookings" and blocker["group"] == "APT"
    link = f"/groups/{site['APT'].pk}/?day=2026-03-10&amp;span=week&amp;status=provisional"
    assert f'<a href="{link}">APT has 1 provisional booking in the period (first on 2026-03-10).</a>' in (
        response.content.decode()
    )
    content = response.content.decode()
    assert "Close these 4 groups up to 2026-04-01 00:00 (Europe/Berlin)" in content
    assert 'name="accept_provisional"' in content  # offered: there are provisional figures
    for code in SITE_CODES:
        assert f'<input type="hidden" name="groups" value="{code}"' in content
    assert "SUPPLIER" not in content


def test_a_clean_site_offers_no_acceptance_of_provisional_figures(client_in, site):
    content = client_in.get(url("GRID-CONNECTION")).content.decode()
    assert "Nothing stands in the way" in content
    assert 'name="accept_provisional"' not in content


def test_post_without_the_confirmation_is_refused(client_in, tenant, site):
    response = client_in.post(url("GRID-CONNECTION"), {"groups": SITE_CODES})
    assert response.status_code == 400
    assert response.context["form"].errors["confirm"] == ["Confirm which groups are closed, up to which instant."]
    assert closed_until(tenant) == [None] * 4


def test_post_with_the_confirmation_closes_the_site(client_in, tenant, site):
    response = client_in.post(url("GRID-CONNECTION"), confirmed(), follow=True)
    assert response.redirect_chain == [(url(str(site["GRID-CONNECTION"].pk)), 302)]
    assert flash(response) == ["2026-03 is closed for GRID-CONNECTION: 4 groups closed."]
    assert closed_until(tenant) == [APRIL] * 4
    assert closed_until(tenant, ["SUPPLIER"]) == [None]
    entry = AuditEntry.objects.get(action="site.month_close")
    assert (entry.actor, entry.data["groups"]) == ("user:operator", SITE_CODES)
    # The page now says so, and offers nothing more to close.
    content = response.content.decode()
    assert "Every group of the site is closed up to 2026-04-01 00:00 (Europe/Berlin)." in content
    assert len(response.context["checklist"]["already_closed"]) == 4


def test_provisional_figures_refuse_the_close_until_accepted(client_in, tenant, site, flows):
    response = client_in.post(url("GRID-CONNECTION"), confirmed())
    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [
        "APT has 1 provisional booking in the period (first on 2026-03-10)."
    ]
    assert closed_until(tenant) == [None] * 4
    response = client_in.post(url("GRID-CONNECTION"), confirmed(accept_provisional="on"), follow=True)
    assert flash(response) == [
        "2026-03 is closed for GRID-CONNECTION: 4 groups closed. Provisional figures were accepted."
    ]
    assert closed_until(tenant) == [APRIL] * 4


def test_an_open_case_blocks_even_with_provisional_figures_accepted(client_in, tenant, site):
    ClarificationCase.objects.create(
        tenant=tenant,
        reason=ClarificationReason.GROUP_NOT_VALID,
        detail="late value",
        payload={"group": "APT", "start": iso(local(10)), "energy_wh": 10},
        subject="measurement",
    )
    page = client_in.get(url("GRID-CONNECTION"))
    assert '<a href="/clarifications/?status=open">1 open clarification case concerns the site' in (
        page.content.decode()
    )
    assert "cannot be closed until the blocking items above are resolved" in page.content.decode()
    response = client_in.post(url("GRID-CONNECTION"), confirmed(accept_provisional="on"))
    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == ["1 open clarification case concerns the site in the period."]
    assert closed_until(tenant) == [None] * 4


def test_a_confirmation_of_other_groups_is_refused_and_the_page_shows_the_current_list(
    client_in, tenant, site, make_group
):
    response = client_in.post(url("GRID-CONNECTION"), confirmed(["GRID-CONNECTION", "PV"]))
    assert response.status_code == 400
    assert response.context["form"].errors["confirm"] == [
        "The groups to close changed meanwhile: now APT, GRID-CONNECTION, HOUSE, PV. Check the list and confirm again."
    ]
    assert 'name="groups" value="HOUSE"' in response.content.decode()  # confirm anew against this list
    assert closed_until(tenant) == [None] * 4


def test_another_tenants_group_or_an_unknown_one_is_404(client_in, stranger):
    assert client_in.get(url(stranger["group"].code)).status_code == 404
    assert client_in.get(url(str(stranger["group"].pk))).status_code == 404
    assert client_in.post(url(str(stranger["group"].pk)), confirmed(["FOREIGN-PV"])).status_code == 404
    assert BalanceGroup.objects.get(pk=stranger["group"].pk).closed_until is None
    assert client_in.get(url("NO-SUCH-GROUP")).status_code == 404


@pytest.mark.parametrize("month", ["2026-13", "March", "2026-3", "1999-12"])
def test_a_bad_month_is_400(client_in, site, month):
    response = client_in.get(url("GRID-CONNECTION", month))
    assert response.status_code == 400
    assert "month" in response.content.decode()


def test_anonymous_is_sent_to_login(client, site):
    response = client.get(url("GRID-CONNECTION"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_page_speaks_german(client_in, tenant, site, flows):
    response = client_in.get(url("GRID-CONNECTION"), HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 200
    content = response.content.decode()
    assert "03/2026 für den Standort GRID-CONNECTION abschließen" in content
    assert "Checkliste" in content and "Gruppen des Standorts" in content
    assert "<td>Bilanzkreis</td>" in content and "<td>Quelle</td>" in content and "<td>Verbraucher</td>" in content
    assert "Diese 4 Gruppen bis 01.04.2026 00:00 (Europe/Berlin) abschließen" in content
    refused = client_in.post(url("GRID-CONNECTION"), {"groups": SITE_CODES}, HTTP_ACCEPT_LANGUAGE="de")
    assert refused.status_code == 400
    assert "Bestätigen Sie" in refused.content.decode()
    assert APRIL not in closed_until(tenant)  # the refusal closed nothing
