"""The group pages in German, shares in percent, readable refusals and actions offered only when they can work."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import translation

from balance_groups.models import BalanceGroup
from dashboard.forms import GroupCreateForm, RuleChangeForm
from dashboard.service_errors import ISO_INSTANT
from dashboard.tests.conftest import DAY, local
from settlement.models import SettlementRule

pytestmark = pytest.mark.django_db
UTC = dt.UTC
GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de"}


def page(client, url, **params):
    response = client.get(url, params, **GERMAN)
    assert response.status_code == 200
    return response.content.decode()


# German pages


def test_group_page_in_german(client_in, site, flows, book):
    book("PV", "APT", local(12), local(12, 15), 7961, external_id="big")
    html = page(client_in, reverse("dashboard:group", args=[site["APT"].pk]), day=DAY.isoformat())
    assert '<html lang="de"' in html
    for text in ("Bilanz Di, 10.03.2026", "Verbraucher", "Buchungen", "Verlauf der Ausgleichsregel", "Zufluss (Wh)"):
        assert text in html, text
    assert "96 Viertelstunden. Zufluss" in html
    # 600 + 7961 Wh: kWh for people in the summary, exact Wh (German thousands separator) in the table.
    assert '<span class="energy" title="8.561 Wh">8,6\u00a0kWh</span>' in html
    assert '<td class="num">7.961</td>' in html
    assert "Di 10.03. 12:00" in html
    assert "100\u202f%" in html  # the rule's share


def test_group_form_in_german(client_in, site):
    html = page(client_in, reverse("dashboard:group-create"))
    for text in ("Neuer Bilanzkreis", "Gültig ab (Europe/Berlin)", "Messlokation", "Speichern", "Abbrechen"):
        assert text in html, text
    html = page(client_in, reverse("dashboard:group-edit", args=[site["APT"].pk]))
    assert "APT bearbeiten" in html and "Gültig bis (Europe/Berlin)" in html


def test_rule_form_in_german_shows_shares_in_percent(client_in, site):
    url = reverse("dashboard:rule-edit", args=[site["APT"].pk])
    parents = [site[code].pk for code in ("GRID-CONNECTION", "HOUSE", "SUPPLIER")]
    data = {"interval": "15min", "effective_from": ""}
    for index, (parent, share) in enumerate(zip(parents, ("33,33", "33,33", "33,34"), strict=True), start=1):
        data.update({f"parent_{index}": str(parent), f"share_{index}": share})
    assert client_in.post(url, data, **GERMAN).status_code == 302
    rule = SettlementRule.objects.get(group=site["APT"], effective_until__isnull=True)
    assert sorted(target.share for target in rule.targets.all()) == [3333, 3333, 3334]
    html = page(client_in, url)
    for text in ("Ausgleichsregel von APT", "Übergeordneter Bilanzkreis 1", "Anteil 1 (%)", "15 Minuten"):
        assert text in html, text
    assert 'value="33,33"' in html and 'value="33,34"' in html
    assert "33,33\u202f%" in html  # the rule in force


def test_rule_form_refusal_in_german_at_the_shares(client_in, site):
    url = reverse("dashboard:rule-edit", args=[site["APT"].pk])
    data = {"parent_1": str(site["GRID-CONNECTION"].pk), "share_1": "90", "interval": "15min"}
    response = client_in.post(url, data, **GERMAN)
    assert response.status_code == 400
    assert response.context["form"].errors["share_1"] == [
        "Die Anteile ergeben zusammen 90 %; sie müssen genau 100 % ergeben."
    ]
    assert "parent_1" not in response.context["form"].errors


# Shares in percent


def rule_form(*shares, parents=("1", "2", "3")):
    class Parent:
        def __init__(self, pk):
            self.pk, self.code, self.name = pk, f"P{pk}", f"Parent {pk}"

    data = {"interval": "15min"}
    for index, share in enumerate(shares, start=1):
        data.update({f"parent_{index}": parents[index - 1], f"share_{index}": share})
    return RuleChangeForm(data, parents=[Parent(pk) for pk in parents])


@pytest.mark.parametrize(
    ("shares", "basis_points"),
    [(("100",), [10000]), (("33,33", "33.33", "33,34"), [3333, 3333, 3334]), (("60", "40,0"), [6000, 4000])],
)
def test_shares_in_percent_are_exact_basis_points(shares, basis_points):
    form = rule_form(*shares)
    assert form.is_valid(), form.errors
    assert [share for _, share in form.cleaned_data["targets"]] == basis_points


@pytest.mark.parametrize(
    ("shares", "field", "message"),
    [
        (("33.333", "66,667"), "share_1", "33.333 % has more than two decimals"),
        (("abc",), "share_1", "Enter the share in percent"),
        (("0",), "share_1", "more than 0 % and at most 100 %"),
        (("150",), "share_1", "more than 0 % and at most 100 %"),
        (("60", "30"), "share_1", "The shares add up to 90 %; they must add up to exactly 100 %."),
        (("33,33", "33,33", "33,33"), "share_1", "The shares add up to 99.99 %"),
    ],
)
def test_shares_that_are_no_exact_percent_are_refused_at_the_shares(shares, field, message):
    form = rule_form(*shares)
    assert not form.is_valid()
    assert any(message in text for text in form.errors[field]), form.errors
    assert not any(name.startswith("parent_") for name in form.errors)


def test_a_parent_chosen_twice_is_refused_at_the_second():
    form = rule_form("50", "50", parents=("1", "1", "3"))
    assert not form.is_valid()
    assert "parent balance 1" in form.errors["parent_2"][0]


# Readable refusals


def test_a_refusal_shows_local_time_with_the_zone(client_in, site):
    url = reverse("dashboard:group-close", args=[site["PV"].pk])
    client_in.post(url, {"until": "2026-03-11T00:00"})
    response = client_in.post(url, {"until": "2026-03-05T00:00"})
    assert response.context["form"].errors["until"] == [
        "The group is already closed until 2026-03-11 00:00 (Europe/Berlin); closing never reopens."
    ]
    response = client_in.post(url, {"until": "2026-03-05T00:00"}, **GERMAN)
    assert "11.03.2026 00:00 (Europe/Berlin)" in response.context["form"].errors["until"][0]


def test_the_end_of_validity_before_its_start_is_refused_with_local_time():
    with translation.override("de"):
        form = GroupCreateForm(
            {"code": "X", "name": "X", "kind": "source", "valid_from": "2026-07-01T00:00", "valid_until": "2026-06-01"}
        )
        assert not form.is_valid()
        assert form.errors["valid_until"] == [
            "Das Ende der Gültigkeit muss nach ihrem Beginn (01.07.2026 00:00 (Europe/Berlin)) liegen."
        ]
        assert form.fields["valid_from"].label == "Gültig ab (Europe/Berlin)"


def test_a_local_time_is_taken_in_the_site_zone(client_in, tenant):
    data = {"code": "S", "name": "Sommer", "kind": "source", "valid_from": "2026-07-01T00:00"}
    client_in.post(reverse("dashboard:group-create"), data)
    assert BalanceGroup.objects.get(code="S").valid_from == dt.datetime(2026, 6, 30, 22, 0, tzinfo=UTC)


def test_a_refused_target_is_shown_at_the_parent_it_names(client_in, site, make_group):
    later = make_group("LATER", "balance", valid_from=dt.datetime(2100, 1, 1, tzinfo=UTC) - dt.timedelta(days=1))
    url = reverse("dashboard:rule-edit", args=[site["APT"].pk])
    data = {"interval": "15min", "parent_1": str(site["HOUSE"].pk), "share_1": "50"}
    data.update({"parent_2": str(later.pk), "share_2": "50"})
    response = client_in.post(url, data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "LATER" in errors["parent_2"][0] and "parent_1" not in errors, errors


# Actions that cannot work are not offered


def test_a_closed_group_offers_no_close_and_no_finalize(client_in, site):
    group = site["PV"]
    group.valid_until = group.closed_until = dt.datetime(2026, 3, 1, tzinfo=UTC) - dt.timedelta(hours=1)
    group.save()
    html = page(client_in, reverse("dashboard:group", args=[group.pk]), day=DAY.isoformat())
    assert 'data-testid="fully-closed"' in html
    assert reverse("dashboard:group-close", args=[group.pk]) not in html
    assert 'data-testid="nothing-to-finalize"' in html  # PV has no provisional booking
    assert reverse("dashboard:rule-edit", args=[group.pk]) not in html  # its validity has ended
    assert "eine Regeländerung kann nicht mehr wirksam werden" in html
    close_page = page(client_in, reverse("dashboard:group-close", args=[group.pk]))
    assert "es gibt nichts mehr abzuschließen" in close_page and 'name="until"' not in close_page
    rule_page = page(client_in, reverse("dashboard:rule-edit", args=[group.pk]))
    assert 'data-testid="rule-refusal"' in rule_page and 'name="parent_1"' not in rule_page


def test_finalize_is_offered_while_provisional_bookings_exist(client_in, site, flows):
    html = page(client_in, reverse("dashboard:group", args=[site["APT"].pk]), day=DAY.isoformat())
    assert reverse("dashboard:group-finalize", args=[site["APT"].pk]) in html
    assert "Alle vorläufigen Buchungen" in html
    finalize_page = page(client_in, reverse("dashboard:group-finalize", args=[site["APT"].pk]))
    assert "Buchungen von APT endgültig machen" in finalize_page
    assert "Buchungen endgültig machen, die enden bis (Europe/Berlin)" in finalize_page


def test_a_service_refusal_names_the_field_by_its_label_and_the_instant_in_local_time(client_in, site):
    url = reverse("dashboard:rule-edit", args=[site["APT"].pk])
    data = {"parent_1": str(site["GRID-CONNECTION"].pk), "share_1": "100", "interval": "15min"}
    response = client_in.post(url, {**data, "effective_from": "2026-01-05T00:00"})
    assert response.status_code == 400
    message = response.context["form"].errors["effective_from"][0]
    assert "(Europe/Berlin)" in message and "effective_from" not in message
    assert not ISO_INSTANT.search(message), message
