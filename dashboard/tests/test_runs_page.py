"""The settlement runs page (every run with its real counts, the days settled right after writes) and
the imbalances page in German."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.tests.conftest import DAY, local
from settlement.models import SettlementRun
from settlement.services import settlement_dirty_process, settlement_run_request

pytestmark = pytest.mark.django_db
URL = reverse("dashboard:runs")
UTC = dt.UTC
GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de"}


def runs_table(html: str) -> str:
    return html[html.index('data-testid="runs"') : html.index("</table>", html.index('data-testid="runs"'))]


def on_write_table(html: str) -> str:
    start = html.index('data-testid="settled-on-write"')
    return html[start : html.index("</table>", start)]


def test_an_automatic_run_shows_its_counts(broker_mode, client_in, tenant, site, flows):
    # With a broker a write only marks its days; the periodic job settles them in a recorded run.
    runs = settlement_dirty_process(tenant_id=tenant.pk)
    run = runs[0]
    assert (run.trigger, run.status) == ("schedule", "succeeded")
    assert run.bookings_created > 0 and run.lines_read > 0
    html = client_in.get(URL).content.decode()
    table = runs_table(html)
    assert "automatic (periodic job)" in table and "succeeded" in table
    counts = f"{run.bookings_created} / {run.bookings_updated} / {run.bookings_finalized} / {run.bookings_deleted}"
    assert counts in table and f">{run.lines_read}<" in table
    assert f">{run.days_done} / {run.days_total}<" in table
    # The run's own days are not listed a second time as settled after a write.
    assert "No days settled outside a run." in on_write_table(html)


def test_days_settled_right_after_a_write_are_listed_with_their_counts(client_in, tenant, site, flows):
    # Without a broker every write settles its day at once: the manual run afterwards finds nothing to do.
    settlement_run_request(tenant=tenant, actor="system:test", start=local(0), end=local(24))
    html = client_in.get(URL).content.decode()
    manual = SettlementRun.objects.get(tenant=tenant, trigger="manual")
    assert manual.bookings_created == 0
    rows = on_write_table(html).split("<tr>")[2:]
    assert rows, "every booking above settled its day"
    assert any(f">{DAY.isoformat()}<" in row and ">0 / 0 / 0 / 0<" not in row for row in rows)


def test_every_run_is_listed_page_by_page(client_in, tenant, other_tenant, django_assert_max_num_queries):
    window = {"start": dt.datetime(2026, 3, 1, tzinfo=UTC), "end": dt.datetime(2026, 3, 2, tzinfo=UTC)}
    SettlementRun.objects.bulk_create([SettlementRun(tenant=tenant, trigger="schedule", **window) for _ in range(60)])
    SettlementRun.objects.create(tenant=other_tenant, **window)
    with django_assert_max_num_queries(8):
        first = client_in.get(URL)
    assert len(first.context["runs"]) == 50 and first.context["runs"].paginator.count == 60
    second = client_in.get(URL, {"page": 2})
    assert len(second.context["runs"]) == 10
    assert "Page 2 of 2 (60 runs)" in second.content.decode()


def test_runs_page_in_german(client_in, tenant):
    started = dt.datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
    SettlementRun.objects.create(
        tenant=tenant,
        start=dt.datetime(2026, 3, 9, 23, tzinfo=UTC),
        end=dt.datetime(2026, 3, 10, 23, tzinfo=UTC),
        trigger="schedule",
        status="succeeded",
        groups=12,
        lines_read=61343,
        bookings_created=45933,
        days_total=1,
        days_done=1,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=3),
    )
    html = client_in.get(URL, **GERMAN).content.decode()
    for text in ("Abrechnungsläufe", "Abrechnung ausführen", "automatisch (periodischer Job)", "erfolgreich"):
        assert text in html, text
    assert "Zeitraum (Europe/Berlin)" in html
    assert ">61.343<" in html and "45.933 / 0 / 0 / 0" in html
    assert "10.03.2026 00:00 \u2013 11.03.2026 00:00" in html and "10.03.2026 12:00" in html


def test_a_requested_run_is_reported_in_german(client_in, tenant, flows):
    data = {"start": "2026-03-10T00:00", "end": "2026-03-11T00:00"}
    response = client_in.post(URL, data, follow=True, **GERMAN)
    texts = [str(message) for message in response.context["messages"]]
    expected = "Abrechnungslauf von 10.03.2026 00:00 bis 11.03.2026 00:00 (Europe/Berlin) angefordert: erfolgreich."
    assert expected in texts


# Imbalances


def test_imbalances_page_in_german(client_in, site, book):
    book("PV", "APT", local(12), local(12, 15), 7961, external_id="big")
    response = client_in.get(
        reverse("dashboard:imbalances"), {"day": DAY.isoformat(), "group": str(site["APT"].pk)}, **GERMAN
    )
    html = response.content.decode()
    for text in ("Ungleichgewichte", "Di, 10.03.2026", "Viertelstunde (Europe/Berlin)", "Zufluss (Wh)", "vorläufig"):
        assert text in html, text
    assert '<td class="num">7.961</td>' in html  # exact Wh in the quarter-hour table
    assert "10.03.2026 12:00" in html
    # kWh for people in the day's summary of the group, the exact Wh as its tooltip.
    totals = html[html.index('data-testid="imbalance-totals"') :].split("</p>")[0]
    assert '<span class="energy" title="7.961 Wh">8,0\u00a0kWh</span>' in totals and "APT an diesem Tag" in totals


def test_imbalances_summary_only_for_one_group(client_in, site, flows):
    response = client_in.get(reverse("dashboard:imbalances"), {"day": DAY.isoformat()})
    assert response.context["totals"] is None and b"imbalance-totals" not in response.content
    one = client_in.get(reverse("dashboard:imbalances"), {"day": DAY.isoformat(), "group": str(site["APT"].pk)})
    assert one.context["totals"]["inflow_wh"] == 600


def test_runs_page_renders_a_run_still_running(client_in, tenant):
    SettlementRun.objects.create(
        tenant=tenant,
        start=local(0),
        end=local(24),
        status="running",
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    assert "running" in runs_table(client_in.get(URL).content.decode())
