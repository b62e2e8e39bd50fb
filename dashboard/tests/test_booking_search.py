"""The booking search across groups: every filter, tenant isolation, bad input, constant queries, and
the row actions offered only where they can work (not in closed periods, not twice)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from balance_groups.services import group_close
from dashboard.tests.conftest import DAY, local
from transactions.models import Booking
from transactions.services import booking_create, booking_reverse

pytestmark = pytest.mark.django_db
URL = reverse("dashboard:bookings")


def found(client, **params) -> list:
    response = client.get(URL, params)
    assert response.status_code == 200, response.context["form"].errors
    return [booking.external_id for booking in response.context["page"]]


def manual(client, **params) -> set:
    return set(found(client, kind="manual", **params))


# Filters


def test_without_filters_every_booking_of_the_tenant_newest_first(client_in, flows, tenant):
    response = client_in.get(URL)
    assert response.status_code == 200
    page = list(response.context["page"])
    assert len(page) == Booking.objects.filter(tenant=tenant).count()
    assert [b.start for b in page] == sorted((b.start for b in page), reverse=True)


def test_external_id_exact_or_prefix(client_in, flows):
    assert found(client_in, external_id="pv-apt") == ["pv-apt"]
    assert found(client_in, external_id="pv-") == []
    assert sorted(found(client_in, external_id="pv-", match="prefix")) == ["pv-apt", "pv-sup"]


def test_group_as_source_or_destination(client_in, flows):
    assert manual(client_in, group="SUPPLIER") == {"sup-apt", "pv-sup"}
    assert manual(client_in, group="APT") == {"pv-apt", "sup-apt"}


def test_period_in_local_days(client_in, site, flows, book):
    # 00:00-00:15 local on the next day is 23:00Z on DAY: a UTC day would count it to DAY.
    book("PV", "APT", local(24), local(24, 15), 10, external_id="next-day")
    following = (DAY + dt.timedelta(days=1)).isoformat()
    assert manual(client_in, date_from=DAY.isoformat(), date_to=DAY.isoformat()) == {"pv-apt", "sup-apt", "pv-sup"}
    assert manual(client_in, date_from=following) == {"next-day"}
    assert manual(client_in, date_to=DAY.isoformat()) == {"pv-apt", "sup-apt", "pv-sup"}


def test_kind_and_status(client_in, flows):
    assert set(found(client_in, kind="manual", status="final")) == {"pv-apt", "pv-sup"}
    assert found(client_in, kind="manual", status="provisional") == ["sup-apt"]
    settlement = client_in.get(URL, {"kind": "settlement"}).context["page"]
    assert settlement and {b.kind for b in settlement} == {"settlement"}


def test_another_tenants_bookings_are_never_found(client_in, flows, stranger, other_tenant):
    foreign_supplier = stranger["group"].__class__.objects.create(
        tenant=other_tenant, code="X", name="X", kind="balance", valid_from=stranger["group"].valid_from
    )
    booking_create(
        tenant=other_tenant,
        actor="system:test",
        source=stranger["group"],
        destination=foreign_supplier,
        start=local(10),
        end=local(11),
        energy_wh=5,
        external_id="pv-foreign",
    )
    assert "pv-foreign" not in found(client_in, external_id="pv-", match="prefix")
    response = client_in.get(URL, {"group": "FOREIGN-PV"})
    assert response.status_code == 400
    assert response.context["form"].errors["group"] == ["No group with the code FOREIGN-PV."]
    assert b"pv-foreign" not in client_in.get(URL).content


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"date_from": "2026-13-45"}, "date_from", "Enter a valid date."),
        ({"date_from": "9999-01-01"}, "date_from", "Choose a day from 2000-01-01 to 2099-12-31."),
        ({"date_from": "2026-03-11", "date_to": "2026-03-10"}, "date_to", "The last day must not be before the first."),
        ({"group": "NOPE"}, "group", "No group with the code NOPE."),
        ({"kind": "gift"}, "kind", "Select a valid choice. gift is not one of the available choices."),
        ({"status": "maybe"}, "status", "Select a valid choice. maybe is not one of the available choices."),
        ({"external_id": "x" * 201}, "external_id", "Ensure this value has at most 200 characters (it has 201)."),
    ],
)
def test_bad_input_is_a_message_on_its_field(client_in, flows, params, field, message):
    response = client_in.get(URL, params)
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    assert message in response.content.decode()
    assert list(response.context["page"]) == []


def test_an_unreadable_page_number_shows_a_page(client_in, flows):
    assert client_in.get(URL, {"page": "abc"}).status_code == 200
    assert client_in.get(URL, {"page": "999"}).status_code == 200


# Pages and queries


def test_fifty_per_page_with_a_constant_number_of_queries(client_in, site, book):
    start = local(0)
    for i in range(3):
        book("PV", "APT", start + dt.timedelta(minutes=15 * i), start + dt.timedelta(minutes=15 * (i + 1)), 1)
    with CaptureQueriesContext(connection) as few:
        assert client_in.get(URL, {"kind": "manual"}).status_code == 200
    for i in range(3, 60):
        book("PV", "APT", start + dt.timedelta(minutes=15 * i), start + dt.timedelta(minutes=15 * (i + 1)), 1)
    with CaptureQueriesContext(connection) as many:
        response = client_in.get(URL, {"kind": "manual"})
    assert len(response.context["page"]) == 50 and response.context["page"].paginator.count == 60
    assert len(many) == len(few)
    second = client_in.get(URL, {"kind": "manual", "page": 2})
    assert len(second.context["page"]) == 10
    assert "?kind=manual&page=1" in second.content.decode()


def test_htmx_pager_gets_the_list_only(client_in, flows):
    response = client_in.get(URL, {"kind": "manual"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="bookings")
    assert response.status_code == 200
    assert b"<html" not in response.content and b'data-testid="bookings"' in response.content


# Actions


def row_of(html: str, external_id: str) -> str:
    cell = f'<td class="mono">{external_id}</td>'
    assert cell in html, external_id
    row_start = html.rfind("<tr", 0, html.index(cell))
    return html[row_start : html.index("</tr>", row_start)]


def test_actions_where_they_work(client_in, flows):
    html = client_in.get(URL, {"kind": "manual"}).content.decode()
    assert reverse("dashboard:booking-finalize", args=[flows["supplier_apt"].pk]) in row_of(html, "sup-apt")
    assert reverse("dashboard:booking-reverse", args=[flows["pv_apt"].pk]) in row_of(html, "pv-apt")


def test_no_actions_in_a_closed_period_but_a_reason(client_in, site, flows, book, operator):
    later = book("SUPPLIER", "APT", local(12), local(13), 50, external_id="after-close")
    group_close(group=site["APT"], actor=operator, until=local(12))
    html = client_in.get(URL, {"kind": "manual"}).content.decode()
    for external_id in ("pv-apt", "sup-apt"):  # final and provisional, both before 12:00 on APT
        row = row_of(html, external_id)
        assert "booking-" not in row and "<form" not in row
        assert "period closed" in row
    assert reverse("dashboard:booking-finalize", args=[later.pk]) in row_of(html, "after-close")
    # pv-sup does not touch APT: it can still be reversed.
    assert reverse("dashboard:booking-reverse", args=[flows["pv_supplier"].pk]) in row_of(html, "pv-sup")
    # The group page lists the same rows with the same rule.
    group_html = client_in.get(reverse("dashboard:group", args=[site["APT"].pk]), {"day": DAY.isoformat()})
    assert "period closed" in row_of(group_html.content.decode(), "pv-apt")


def test_a_reversed_booking_is_not_offered_again(client_in, flows, operator):
    booking_reverse(booking=flows["pv_apt"], actor=operator)
    row = row_of(client_in.get(URL, {"kind": "manual"}).content.decode(), "pv-apt")
    assert "<form" not in row and "reversed already" in row


def test_reverse_from_the_search_comes_back_to_it(client_in, flows):
    back = f"{URL}?external_id=pv-apt"
    response = client_in.post(reverse("dashboard:booking-reverse", args=[flows["pv_apt"].pk]), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    assert Booking.objects.filter(reverses=flows["pv_apt"]).exists()


# German


def test_search_page_in_german(client_in, site, book):
    book("PV", "APT", local(12), local(12, 15), 7961, external_id="big")
    response = client_in.get(URL, {"external_id": "big"}, HTTP_ACCEPT_LANGUAGE="de")
    html = response.content.decode()
    assert '<html lang="de"' in html
    for text in ("Buchungen", "Externe ID", "Beginn (Europe/Berlin)", "Von → nach", "Endgültig machen"):
        assert text in html, text
    assert '<td class="num">7.961</td>' in html
    assert "10.03.2026 12:00" in html
    assert "vorläufig" in html and "<td>Manuell</td>" in html
    assert "1 Buchung." in html
    bad = client_in.get(URL, {"date_from": "2026-03-11", "date_to": "2026-03-10"}, HTTP_ACCEPT_LANGUAGE="de")
    assert bad.status_code == 400
    assert "Der letzte Tag darf nicht vor dem ersten liegen." in bad.content.decode()


def test_german_dates_are_read_in_the_search(client_in, flows):
    response = client_in.get(URL, {"date_from": "10.03.2026", "kind": "manual"}, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 200
    assert {b.external_id for b in response.context["page"]} == {"pv-apt", "sup-apt", "pv-sup"}
