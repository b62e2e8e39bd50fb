"""Allocation scheme pages and forms, and the local supply chart on a consumer's group page."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from allocation.measurements import measurements_ingest
from allocation.models import AllocationScheme
from allocation.selectors import scheme_allocation
from allocation.services import scheme_change
from balance_groups.factories import GroupFactory
from core.quarters import QUARTER, site_zone
from core.testing import iso
from dashboard.charts import TOP_CONSUMERS
from dashboard.forms import percent_text
from dashboard.tests.conftest import DAY, DAY_START, local
from dashboard.tests.scheme_site import GAP, SUBSTITUTES, build_scheme_site

pytestmark = pytest.mark.django_db
DAY_END = DAY_START + dt.timedelta(days=1)


@pytest.fixture
def scheme_site(site, operator):
    return build_scheme_site(site, operator)


def scheme_page(client, code="HAUS", **params):
    return client.get(reverse("dashboard:scheme", args=[code]), {"day": DAY.isoformat(), **params})


def flash(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def quarter(instant: dt.datetime) -> int:
    return int((instant - DAY_START) / QUARTER)


# Pages


def test_the_nav_links_the_list_and_the_list_shows_each_scheme(client_in, scheme_site):
    response = client_in.get(reverse("dashboard:schemes"))
    assert response.status_code == 200
    assert b'href="/schemes/">Allocation</a>' in response.content
    row = response.context["rows"][0]
    assert (row["code"], row["versions"], row["consumers"]) == ("HAUS", 1, 2)
    assert [s.group.code for s in row["sources"]] == ["PV", "BAT"]
    text = response.content.decode()
    assert "1. PV, 2. BAT" in text
    assert "in proportion to what each consumer consumed" in text


def test_the_scheme_page_shows_the_day_its_gap_and_its_provisional_quarter_hours(
    client_in, scheme_site, django_assert_max_num_queries
):
    with django_assert_max_num_queries(20):
        response = scheme_page(client_in)
    assert response.status_code == 200
    counts = response.context["counts"]
    # APT-2's missing 12:00 is a gap; APT's four substitute values and the gap are provisional.
    assert (counts["intervals"], counts["gaps"], counts["provisional"], counts["ahead"]) == (96, 1, 5, 0)
    chart = response.context["chart"]
    assert chart["labels"][0] == "00:00" and len(chart["labels"]) == 96
    assert [i for i, gaps in enumerate(chart["gaps"]) if gaps] == [quarter(GAP)]
    provisional = [i for i, status in enumerate(chart["status"]) if status == "provisional"]
    assert provisional == sorted([quarter(GAP), *(quarter(q) for q in SUBSTITUTES)])
    assert [s["label"] for s in chart["series"]] == ["APT", "APT-2", "Surplus to SUPPLIER", "Not allocated (gap)"]
    text = response.content.decode()
    assert "1 quarter-hour with a missing measurement" in text
    assert "5 of 96 quarter-hours provisional" in text
    assert "Being recomputed" not in text


def test_the_chart_stacks_exactly_the_generation_and_the_table_sums_per_consumer(client_in, scheme_site):
    response = scheme_page(client_in)
    allocation = response.context["allocation"]
    chart = response.context["chart"]
    for position, source in enumerate(chart["sources"]):
        for i, interval in enumerate(allocation["intervals"]):
            stacked = sum(part[i] for part in source["data"])
            assert stacked == interval["sources"][position]["generation_wh"]
    # The gap's generation is drawn as not allocated, never as surplus.
    pv = chart["sources"][0]
    assert pv["data"][3][quarter(GAP)] == allocation["intervals"][quarter(GAP)]["sources"][0]["generation_wh"] > 0
    rows = {row["code"]: row for row in response.context["consumer_rows"]}
    for row in rows.values():
        assert row["local_wh"] + row["residual_wh"] + row["unallocated_wh"] == row["consumption_wh"]
    assert rows["APT-2"]["unallocated_wh"] == 0  # its own value is the one missing
    assert rows["APT"]["unallocated_wh"] == 120 + 10 * (quarter(GAP) % 4)
    total = response.context["total"]
    assert total["consumption_wh"] == sum(row["consumption_wh"] for row in rows.values())
    assert total["local_share"] == pytest.approx(total["local_wh"] / total["consumption_wh"])
    assert 'data-testid="consumer-table"' in response.content.decode()


def test_versions_are_listed_with_the_one_in_force_marked(client_in, scheme_site, operator):
    first = scheme_site["scheme"]
    groups = scheme_site["groups"]
    second = scheme_change(
        tenant=first.tenant,
        actor=operator,
        code="HAUS",
        name="Mieterstrom Haus",
        method="static_redistributed",
        sources=[groups["PV"]],
        consumers=[(groups["APT"], 5050), (groups["APT-2"], 4950)],
        surplus_to=groups["SUPPLIER"],
        residual_from=groups["SUPPLIER"],
    )
    response = scheme_page(client_in)
    versions = response.context["versions"]
    assert [v.pk for v in versions] == [second.pk, first.pk]  # newest first
    assert [(v.is_current, v.is_future) for v in versions] == [(False, True), (True, False)]
    text = response.content.decode()
    assert "in force" in text and "scheduled" in text
    assert "50.50\u202f%" in text and "49.50\u202f%" in text
    assert "offered again to the consumers not yet covered" in text
    assert [s.group.code for s in versions[1].sources.all()] == ["PV", "BAT"]


@pytest.mark.parametrize(
    ("span", "intervals", "label"), [("week", 168, "Tue 10.03. 00:00"), ("month", 31, "Sun 01.03.")]
)
def test_week_and_month(client_in, scheme_site, span, intervals, label):
    response = scheme_page(client_in, span=span)
    assert response.status_code == 200
    chart = response.context["chart"]
    assert len(chart["labels"]) == intervals and chart["labels"][0] == label
    assert (chart["unit"], chart["divisor"]) == ("kWh per hour" if span == "week" else "kWh per day", 1000)
    # Other days of the period are in force but not measured: every quarter-hour of them is a gap.
    assert response.context["counts"]["gaps"] == (intervals * 4 if span == "week" else 31 * 96 - 4) - 95
    if span == "month":
        assert response.context["previous_url"].endswith("day=2026-02-01&span=month")
        assert response.context["next_url"].endswith("day=2026-04-01&span=month")


def test_the_period_ahead_is_not_counted_as_gaps(client_in, scheme_site):
    response = client_in.get(reverse("dashboard:scheme", args=["HAUS"]), {"day": "2099-12-01", "span": "month"})
    counts = response.context["counts"]
    assert (counts["gaps"], counts["provisional"], counts["ahead"]) == (0, 0, 31)
    assert not any(response.context["chart"]["gaps"])
    assert "31 days still ahead: not measured yet." in response.content.decode()


def test_a_change_waiting_for_the_job_shows_being_recomputed(client_in, scheme_site, broker_mode, tenant, operator):
    measurements_ingest(tenant=tenant, actor=operator, items=[{"group": "APT-2", "start": iso(GAP), "energy_wh": 90}])
    response = scheme_page(client_in)
    assert response.context["allocation"]["up_to_date"] is False
    assert b'data-testid="recomputing"' in response.content
    group_page = client_in.get(reverse("dashboard:group", args=[scheme_site["groups"]["APT"].pk]), {"day": DAY})
    assert b'data-testid="supply-recomputing"' in group_page.content


def test_many_consumers_are_drawn_as_the_top_ones_and_others(client_in, site, operator, tenant, make_group):
    consumers = [make_group(f"C-{i:02d}", "consumer") for i in range(12)]
    scheme_change(
        tenant=tenant,
        actor=operator,
        code="BIG",
        name="Big site",
        method="dynamic",
        sources=[site["PV"]],
        consumers=[(group, 10000 // 12 + (10000 % 12 if i == 0 else 0)) for i, group in enumerate(consumers)],
        surplus_to=site["SUPPLIER"],
        residual_from=site["SUPPLIER"],
        effective_from=site["PV"].valid_from,
    )
    items = [{"group": "PV", "start": iso(local(12)), "energy_wh": 10000, "status": "final"}]
    items += [
        {"group": group.code, "start": iso(local(12)), "energy_wh": 100 * (i + 1), "status": "final"}
        for i, group in enumerate(consumers)
    ]
    assert measurements_ingest(tenant=tenant, actor=operator, items=items).rejected == []
    chart = scheme_page(client_in, code="BIG").context["chart"]
    labels = [s["label"] for s in chart["series"]]
    # The consumers with the most local energy are named, the rest summed; nothing is lost.
    assert labels == [f"C-{i:02d}" for i in range(11, 11 - TOP_CONSUMERS, -1)] + [
        f"{12 - TOP_CONSUMERS} other consumers",
        "Surplus to SUPPLIER",
    ]
    at = quarter(local(12))
    parts = [part[at] for part in chart["sources"][0]["data"]]
    assert sum(parts) == 10000
    assert parts[TOP_CONSUMERS] == sum(100 * (i + 1) for i in range(12 - TOP_CONSUMERS))  # C-00..C-03
    assert parts[-1] == 10000 - sum(100 * (i + 1) for i in range(12))  # surplus


def test_a_scheme_code_with_a_slash_has_its_page(client_in, site, operator, tenant):
    scheme_change(
        tenant=tenant,
        actor=operator,
        code="SITE/A",
        name="Haus A",
        method="static",
        sources=[site["PV"]],
        consumers=[(site["APT"], 10000)],
        surplus_to=site["SUPPLIER"],
        residual_from=site["SUPPLIER"],
        effective_from=site["PV"].valid_from,
    )
    url = reverse("dashboard:scheme", args=["SITE/A"])
    assert url == "/schemes/SITE/A/"
    assert client_in.get(url).status_code == 200
    assert client_in.get(reverse("dashboard:scheme-new-version", args=["SITE/A"])).status_code == 200


def test_another_tenants_scheme_is_a_404(client_in, scheme_site, stranger, other_tenant):
    foreign = {
        kind: GroupFactory(tenant=other_tenant, code=f"F-{kind}", kind=kind)
        for kind in ("source", "consumer", "balance")
    }
    scheme_change(
        tenant=other_tenant,
        actor=stranger["user"],
        code="FOREIGN",
        name="Fremd",
        method="dynamic",
        sources=[foreign["source"]],
        consumers=[(foreign["consumer"], 10000)],
        surplus_to=foreign["balance"],
        residual_from=foreign["balance"],
        effective_from=foreign["source"].valid_from,
    )
    for name in ("dashboard:scheme", "dashboard:scheme-new-version"):
        assert client_in.get(reverse(name, args=["FOREIGN"])).status_code == 404
    assert client_in.post(reverse("dashboard:scheme-new-version", args=["FOREIGN"]), {}).status_code == 404
    assert b"FOREIGN" not in client_in.get(reverse("dashboard:schemes")).content
    assert client_in.get(reverse("dashboard:scheme", args=["NOPE"])).status_code == 404


# The consumer's local supply on its group page


def test_the_group_page_of_a_consumer_shows_local_vs_residual(client_in, scheme_site, django_assert_max_num_queries):
    apt = scheme_site["groups"]["APT"]
    with django_assert_max_num_queries(24):
        response = client_in.get(reverse("dashboard:group", args=[apt.pk]), {"day": DAY.isoformat()})
    supply = response.context["supply"]
    assert supply["scheme"].code == "HAUS"
    chart = supply["chart"]
    assert len(chart["labels"]) == 96
    assert [i for i, gaps in enumerate(chart["gaps"]) if gaps] == [quarter(GAP)]
    assert chart["status"][quarter(SUBSTITUTES[0])] == "provisional"
    assert chart["series"]["unallocated"][quarter(GAP)] == 120 + 10 * (quarter(GAP) % 4)
    allocation = scheme_allocation(scheme=scheme_site["scheme"], start=DAY_START, end=DAY_END, resolution="1d")
    (row,) = [r for r in allocation["intervals"][0]["consumers"] if r["group"] == apt.pk]
    assert supply["totals"]["local_wh"] == row["local_wh"] == sum(chart["series"]["local"])
    assert supply["totals"]["residual_wh"] == row["residual_wh"] == sum(chart["series"]["residual"])
    text = response.content.decode()
    assert 'data-testid="local-supply"' in text
    assert f'href="/schemes/HAUS/?day={DAY.isoformat()}"' in text
    assert "1 quarter-hour with a missing measurement" in text


def test_a_missing_value_of_the_consumer_itself_is_a_gap_on_its_page(client_in, scheme_site):
    apt2 = scheme_site["groups"]["APT-2"]
    response = client_in.get(reverse("dashboard:group", args=[apt2.pk]), {"day": DAY.isoformat(), "span": "week"})
    chart = response.context["supply"]["chart"]
    assert len(chart["labels"]) == 168 and chart["unit"] == "kWh per hour"
    hour = quarter(GAP) // 4
    assert chart["gaps"][hour] == 1 and chart["status"][hour] == "provisional"
    assert chart["series"]["local"][hour] + chart["series"]["residual"][hour] > 0  # the hour's other quarters


def test_groups_outside_any_scheme_show_no_local_supply(client_in, scheme_site, make_group):
    loner = make_group("LONER", "consumer")
    for group in (loner, scheme_site["groups"]["PV"]):
        response = client_in.get(reverse("dashboard:group", args=[group.pk]), {"day": DAY.isoformat()})
        assert response.context["supply"] is None
        assert b'data-testid="local-supply"' not in response.content


# Forms


def scheme_data(site, **changes) -> dict:
    data = {
        "code": "NEU",
        "name": "Neues Haus",
        "method": "static",
        "sources": "PV\n",
        "consumers": "APT 100",
        "surplus_to": str(site["SUPPLIER"].pk),
        "residual_from": str(site["SUPPLIER"].pk),
        "effective_from": "2026-01-01T01:00",
        "price_local_ct_per_kwh": "",
        "price_residual_ct_per_kwh": "",
        "base_fee_eur_per_month": "",
    }
    data.update(changes)
    return data


def test_create_a_scheme_with_percent_shares_converted_exactly(client_in, site, make_group):
    make_group("APT-2", "consumer")
    make_group("APT-3", "consumer")
    data = scheme_data(
        site,
        sources="PV\n",
        consumers="APT    12.5\nAPT-2  33,33 %\n\nAPT-3  54.17\n",
        price_local_ct_per_kwh="24.5",
        base_fee_eur_per_month="6.90",
    )
    response = client_in.post(reverse("dashboard:scheme-create"), data)
    assert response.status_code == 302
    assert response["Location"] == "/schemes/NEU/?day=2026-01-01"
    scheme = AllocationScheme.objects.get(code="NEU")
    assert [(c.group.code, c.share) for c in scheme.consumers.order_by("position")] == [
        ("APT", 1250),
        ("APT-2", 3333),
        ("APT-3", 5417),
    ]
    assert scheme.effective_from == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # 01:00 local (CET)
    assert str(scheme.price_local_ct_per_kwh) == "24.5000" and scheme.price_residual_ct_per_kwh is None
    assert flash(response) == ["Scheme NEU: the version takes effect at 2026-01-01 01:00 (Europe/Berlin), 00:00 UTC."]


def test_the_create_form_explains_the_methods_and_the_timing(client_in, site):
    response = client_in.get(reverse("dashboard:scheme-create"))
    text = response.content.decode()
    assert response.status_code == 200
    for sentence in ("in proportion to what each consumer", "what a share leaves unused is surplus", "offered again"):
        assert sentence in text
    assert "may start as early as all its groups are valid" in text
    assert "share in percent" in text and "basis" in text
    assert 'data-testid="scheme-timing"' in text


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"consumers": "APT 12.345"}, "consumers", "Line 1: 12.345 % has more than two decimals"),
        ({"consumers": "APT 60\nNOPE 40"}, "consumers", "Line 2: no balance group with code 'NOPE'."),
        ({"consumers": "APT 60\nAPT 40"}, "consumers", "Line 2: APT is listed already (line 1)."),
        ({"consumers": "APT sixty"}, "consumers", "Line 1: write the code and the share in percent"),
        ({"consumers": "APT -5"}, "consumers", "Line 1: A share cannot be negative."),
        ({"consumers": "APT 101"}, "consumers", "Line 1: 101 % is more than 100 %."),
        ({"consumers": "APT 99.5"}, "consumers", "The shares add up to 99.5 %; they must add up to exactly 100 %."),
        ({"consumers": "PV 100"}, "consumers", "PV is not a consumer; only groups of kind consumer can be consumers."),
        ({"sources": "APT"}, "sources", "APT is not a source; only groups of kind source can be sources."),
        ({"sources": "PV\nPV"}, "sources", "Line 2: PV is listed already (line 1)."),
        ({"sources": ""}, "sources", "This field is required."),
        ({"method": ""}, "method", "This field is required."),
        ({"surplus_to": "SUPPLIER"}, "surplus_to", "Select a valid choice."),
        (
            {"effective_from": "2026-01-01T01:07"},
            "effective_from",
            "2026-01-01 01:07 (Europe/Berlin) is not on a quarter-hour boundary",
        ),
        ({"effective_from": "2025-12-01T00:00"}, "effective_from", "The first version may start when all"),
        ({"effective_from": "2026-03-29T02:30"}, "effective_from", "does not exist in Europe/Berlin"),
        ({"effective_from": "0001-01-01T00:00"}, "effective_from", "0001-01-01T00:00 is outside the supported range"),
        ({"effective_from": "9999-12-31T23:45"}, "effective_from", "must lie between 2000-01-01 and 2100-01-01 (UTC)"),
        ({"price_local_ct_per_kwh": "1.23456"}, "price_local_ct_per_kwh", "no more than 4 decimal places"),
        ({"base_fee_eur_per_month": "-1"}, "base_fee_eur_per_month", "greater than or equal to 0"),
        ({"code": "new"}, "code", "'new' is the address of the form for a new scheme"),
        ({"code": ""}, "code", "This field is required."),
    ],
)
def test_a_refused_scheme_shows_the_error_at_its_field_and_keeps_the_input(client_in, site, changes, field, message):
    data = scheme_data(site, **changes)
    response = client_in.post(reverse("dashboard:scheme-create"), data)
    assert response.status_code == 400
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    assert not AllocationScheme.objects.exists()
    text = response.content.decode()
    assert f'id="id_{field}_error"' in text
    assert "Not saved: correct the 1 field marked below." in text
    if changes.get("consumers"):
        assert changes["consumers"].split("\n")[0] in text  # the typed lines are kept


def test_a_service_refusal_of_a_participant_lands_at_its_field(client_in, site, scheme_site):
    # APT already takes part in HAUS; PV as surplus_to takes part in the new scheme itself.
    response = client_in.post(reverse("dashboard:scheme-create"), scheme_data(site))
    assert response.status_code == 400
    assert "Already in another scheme at that time: APT (in HAUS)." in response.context["form"].errors["consumers"][0]
    loner = GroupFactory(tenant=site["PV"].tenant, code="LONER", kind="consumer")
    data = scheme_data(site, consumers=f"{loner.code} 100", sources="BAT", surplus_to=str(site["PV"].pk))
    response = client_in.post(reverse("dashboard:scheme-create"), data)
    # PV is in HAUS, not in this scheme: it may take the surplus here; BAT is in HAUS as a source.
    assert "Already in another scheme at that time: BAT (in HAUS)." in response.context["form"].errors["sources"][0]
    data = scheme_data(site, consumers=f"{loner.code} 100", sources="PV", surplus_to=str(site["PV"].pk))
    response = client_in.post(reverse("dashboard:scheme-create"), data)
    assert response.context["form"].errors["surplus_to"] == [
        "PV takes part in the scheme; the surplus must go to another group."
    ]


def test_the_create_form_refuses_an_existing_code(client_in, site, scheme_site):
    response = client_in.post(reverse("dashboard:scheme-create"), scheme_data(site, code="HAUS"))
    assert response.status_code == 400
    assert "A scheme with code 'HAUS' exists already" in response.context["form"].errors["code"][0]
    assert AllocationScheme.objects.filter(code="HAUS").count() == 1


def test_many_line_errors_are_capped(client_in, site):
    lines = "\n".join(f"X-{i} 1" for i in range(15))
    response = client_in.post(reverse("dashboard:scheme-create"), scheme_data(site, consumers=lines))
    errors = response.context["form"].errors["consumers"]
    assert len(errors) == 11 and errors[-1] == "… and 5 more lines to correct."


def test_the_new_version_form_starts_from_the_latest_version(client_in, scheme_site):
    response = client_in.get(reverse("dashboard:scheme-new-version", args=["HAUS"]))
    assert response.status_code == 200
    form = response.context["form"]
    assert "code" not in form.fields
    assert form.initial["sources"] == "PV\nBAT"
    assert form.initial["consumers"] == "APT    60\nAPT-2  40"
    assert form.initial["method"] == "dynamic"
    assert form.initial["surplus_to"] == str(scheme_site["groups"]["SUPPLIER"].pk)
    text = response.content.decode()
    assert "takes effect at the <strong>next quarter-hour</strong> at the earliest" in text
    assert "APT    60\nAPT-2  40" in text


def test_a_new_version_is_saved_and_ends_the_one_before(client_in, scheme_site):
    groups = scheme_site["groups"]
    data = scheme_data(groups, method="static_redistributed", sources="BAT\nPV", consumers="APT 55\nAPT-2 45")
    del data["code"]
    data["effective_from"] = ""
    response = client_in.post(reverse("dashboard:scheme-new-version", args=["HAUS"]), data)
    assert response.status_code == 302
    first, second = AllocationScheme.objects.filter(code="HAUS").order_by("effective_from")
    assert first.effective_until == second.effective_from
    assert [s.group.code for s in second.sources.order_by("position")] == ["BAT", "PV"]
    assert "the version takes effect at" in flash(response)[0]


def test_a_new_version_in_the_past_is_refused_at_its_field(client_in, scheme_site):
    data = scheme_data(scheme_site["groups"], consumers="APT 50\nAPT-2 50", effective_from="2026-03-10T12:00")
    response = client_in.post(reverse("dashboard:scheme-new-version", args=["HAUS"]), data)
    assert response.status_code == 400
    (error,) = response.context["form"].errors["effective_from"]
    assert "at the earliest; schemes never change retroactively." in error
    assert AllocationScheme.objects.filter(code="HAUS").count() == 1


@pytest.mark.parametrize(
    ("share", "text"), [(10000, "100"), (5000, "50"), (1250, "12.5"), (3333, "33.33"), (1, "0.01")]
)
def test_percent_text_round_trips(share, text):
    assert percent_text(share) == text


# German


def test_the_scheme_list_and_page_speak_german(client_in, scheme_site):
    listing = client_in.get(reverse("dashboard:schemes"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Aufteilungsschlüssel" in listing and "Dynamisch (im Verhältnis zum Verbrauch)" in listing
    assert "Quellen (Reihenfolge der Priorität)" in listing
    since = scheme_site["scheme"].effective_from.astimezone(site_zone())
    assert f"seit {since:%d.%m.%Y %H:%M}" in listing
    page = client_in.get(
        reverse("dashboard:scheme", args=["HAUS"]), {"day": DAY.isoformat()}, HTTP_ACCEPT_LANGUAGE="de"
    ).content.decode()
    assert "Aufteilung Di, 10.03.2026" in page
    assert "1 Viertelstunde mit fehlendem Messwert" in page
    assert "5 von 96 Viertelstunden vorläufig" in page
    assert "Je Verbraucher" in page and "Verbrauch (kWh)" in page
    assert "60\u202f%" in page and "Vorheriger Tag" in page
    rows = {row["code"]: row for row in scheme_page(client_in).context["consumer_rows"]}
    consumption = Decimal(rows["APT"]["consumption_wh"]) / 1000
    assert f"{consumption:.3f}".replace(".", ",") in page  # kWh with the German decimal comma
    assert "erzeugt " in page and "\u00a0kWh</span>" in page


def test_german_shares_and_prices_are_read_exactly_and_shown_in_german(client_in, site, make_group):
    make_group("APT-2", "consumer")
    data = scheme_data(
        site,
        consumers="APT 33,33\nAPT-2 66,67 %",
        price_local_ct_per_kwh="27,5",
        base_fee_eur_per_month="48,90",
    )
    response = client_in.post(reverse("dashboard:scheme-create"), data, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 302, response.context["form"].errors
    scheme = AllocationScheme.objects.get(code="NEU")
    assert [c.share for c in scheme.consumers.order_by("position")] == [3333, 6667]
    assert scheme.price_local_ct_per_kwh == Decimal("27.5") and scheme.base_fee_eur_per_month == Decimal("48.90")
    assert flash(response) == [
        "Aufteilungsschlüssel NEU: Die Version gilt ab 01.01.2026 01:00 (Europe/Berlin), 00:00 UTC."
    ]
    page = client_in.get(reverse("dashboard:scheme", args=["NEU"]), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Lokalstrom 27,5 ct/kWh, Grundgebühr 48,90 EUR pro Monat" in page
    assert "33,33\u202f%" in page
    form = client_in.get(reverse("dashboard:scheme-new-version", args=["NEU"]), HTTP_ACCEPT_LANGUAGE="de")
    text = form.content.decode()
    assert "APT    33,33\nAPT-2  66,67" in text
    assert 'value="27,5"' in text and 'value="48,90"' in text
    assert "Neue Version von NEU" in text and "Statisch (feste Anteile)" in text


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"consumers": "APT 12,345"}, "consumers", "Zeile 1: 12,345 % hat mehr als zwei Nachkommastellen"),
        (
            {"consumers": "APT 99,5"},
            "consumers",
            "Die Anteile ergeben zusammen 99,5 %; sie müssen genau 100 % ergeben.",
        ),
        ({"price_local_ct_per_kwh": "1,23456"}, "price_local_ct_per_kwh", "höchstens 4 Dezimalstellen"),
        (
            {"effective_from": "2026-01-01T01:07"},
            "effective_from",
            "01.01.2026 01:07 (Europe/Berlin)",
        ),
        ({"effective_from": "2025-12-01T00:00"}, "effective_from", "01.01.2026 01:00 (Europe/Berlin)"),
    ],
)
def test_a_german_refusal_is_german_at_its_field_with_its_label(client_in, site, changes, field, message):
    response = client_in.post(
        reverse("dashboard:scheme-create"), scheme_data(site, **changes), HTTP_ACCEPT_LANGUAGE="de"
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    text = response.content.decode()
    assert "Nicht gespeichert: Korrigieren Sie 1 unten markiertes Feld." in text
    assert f'<a href="#id_{field}">{form.fields[field].label}</a>' in text


def test_a_third_decimal_of_a_share_is_refused_never_rounded(client_in, site, make_group):
    make_group("APT-2", "consumer")
    data = scheme_data(site, consumers="APT 33.335\nAPT-2 66.665")
    response = client_in.post(reverse("dashboard:scheme-create"), data)
    assert response.status_code == 400
    errors = response.context["form"].errors["consumers"]
    assert [errors[0], errors[1]] == [
        "Line 1: 33.335 % has more than two decimals; shares are given to 0.01 % (one basis point).",
        "Line 2: 66.665 % has more than two decimals; shares are given to 0.01 % (one basis point).",
    ]
    assert not AllocationScheme.objects.exists()
