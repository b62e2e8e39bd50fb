"""The admin of the allocation app: lists render stored extremes; values are written through the service."""

import datetime as dt

import pytest
from django.urls import reverse

from allocation.models import AllocationBooking, AllocationScheme, Interchange, InterchangeStatus, Measurement
from allocation.mscons.reader import InterchangeError
from allocation.mscons.services import bytes_source, mscons_import
from allocation.mscons.writer import Reading, write_interchange
from balance_groups.factories import GroupFactory
from core.admin import site_zone
from core.testing import T0
from transactions.models import ClarificationCase

EDGE = dt.datetime(9999, 12, 31, 23, 45, tzinfo=dt.UTC)
DAWN = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
LISTS = [Measurement, AllocationScheme, AllocationBooking]


def changelist(model) -> str:
    return reverse(f"admin:allocation_{model._meta.model_name}_changelist")


def test_every_list_renders_and_searches_with_stored_extremes(admin_client, tenant, site, make_scheme, measure):
    edge = GroupFactory(tenant=tenant, code="EDGE", kind="consumer", valid_from=DAWN, valid_until=EDGE)
    Measurement.objects.create(
        tenant=tenant, group=edge, quarter_start=EDGE, energy_wh=2**63 - 1, updated_at=EDGE, updated_by="x" * 200
    )
    Measurement.objects.create(tenant=tenant, group=edge, quarter_start=DAWN, energy_wh=0, updated_at=DAWN)
    make_scheme("dynamic")
    measure({site.pv: [1000], site.battery: [0], site.apt1: [300], site.apt2: [500]})
    assert AllocationBooking.objects.exists()
    for model in LISTS:
        for query in ("", "?q=PV", "?q=%00"):
            response = admin_client.get(changelist(model) + query)
            assert response.status_code == 200, (model, query)
    page = admin_client.get(changelist(Measurement) + "?q=EDGE").content.decode()
    assert "9,223,372,036,854,775,807" in page and "9999" in page  # whole Wh, grouped
    scheme = AllocationScheme.objects.get()
    page = admin_client.get(reverse("admin:allocation_allocationscheme_change", args=[scheme.pk])).content.decode()
    assert "APT-1" in page and "5000" in page


def test_schemes_and_allocation_keys_cannot_be_added_or_changed(admin_client, site, make_scheme):
    scheme = make_scheme("static")
    assert admin_client.get(reverse("admin:allocation_allocationscheme_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:allocation_allocationscheme_change", args=[scheme.pk]), {"name": "anders"}
    )
    assert response.status_code == 403
    assert AllocationScheme.objects.get().name == "Mieterstrom Haus"
    assert admin_client.get(reverse("admin:allocation_allocationbooking_add")).status_code == 403


def _form(group, start, energy_wh, **fields) -> dict:
    local = start.astimezone(site_zone())  # the admin takes instants in the site's zone
    return {
        "group": str(group.pk),
        "quarter_start_0": local.strftime("%Y-%m-%d"),
        "quarter_start_1": local.strftime("%H:%M:%S"),
        "energy_wh": energy_wh,
        "quality": fields.get("quality", "measured"),
        "status": fields.get("status", "provisional"),
    }


def test_a_value_added_and_changed_in_the_admin_goes_through_the_service(admin_client, site):
    response = admin_client.post(reverse("admin:allocation_measurement_add"), _form(site.apt1, T0, 120))
    assert response.status_code == 302, response.content.decode()[:2000]
    value = Measurement.objects.get()
    assert (value.tenant, value.energy_wh, value.updated_by) == (site.apt1.tenant, 120, "user:admin")
    change = reverse("admin:allocation_measurement_change", args=[value.pk])
    form = {"energy_wh": 130, "quality": "measured", "status": "final"}
    assert admin_client.post(change, form).status_code == 302
    value.refresh_from_db()
    assert (value.energy_wh, value.status) == (130, "final")
    assert admin_client.post(change, {**form, "energy_wh": 1}).status_code == 403  # final: read-only
    assert Measurement.objects.get().energy_wh == 130


@pytest.mark.parametrize(
    ("start", "fields", "message"),
    [
        (T0 + dt.timedelta(minutes=5), {}, "quarter-hour"),
        (T0 - dt.timedelta(minutes=15), {}, "valid from"),
    ],
)
def test_a_refused_value_is_not_saved_and_says_why(admin_client, site, start, fields, message):
    response = admin_client.post(
        reverse("admin:allocation_measurement_add"), _form(site.pv, start, 5, **fields), follow=True
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Measurement.objects.exists() and not ClarificationCase.objects.exists()


def test_final_only_for_a_measured_value_in_the_admin_too(admin_client, site):
    response = admin_client.post(
        reverse("admin:allocation_measurement_add"), _form(site.pv, T0, 5, quality="substitute", status="final")
    )
    assert response.status_code == 200  # the form is shown again with the error
    assert "Only a measured value can be final; a substitute value stays provisional." in response.content.decode()
    assert not Measurement.objects.exists()


# --- interchanges: evidence, shown and downloadable, never changed ---------------------------------

MP_PV = "DE0001234567890000000000000000001"
MP_NEW = "DE0009999999990000000000000000009"


@pytest.fixture
def interchange(tenant, operator, make_group):
    make_group("PV", "source", metering_point=MP_PV)
    readings = [Reading(MP_PV, T0 + i * dt.timedelta(minutes=15), "1.250") for i in range(4)]
    data = write_interchange([[*readings, Reading(MP_NEW, T0, "0.5")]], reference="REF4711")
    report = mscons_import(
        tenant=tenant, actor=operator, source=bytes_source(data), channel="command", filename="pv & <new>.edi"
    )
    return report.interchange, data


def test_interchanges_list_and_detail_render(admin_client, interchange):
    row, _ = interchange
    for query in ("", "?q=REF4711", f"?q={row.sha256[:12]}", "?q=pv", "?status=imported&channel=command", "?q=%00"):
        response = admin_client.get(changelist(Interchange) + query)
        assert response.status_code == 200, query
    assert "REF4711" in admin_client.get(changelist(Interchange) + f"?q={row.sha256[:12]}").content.decode()
    assert "REF4711" not in admin_client.get(changelist(Interchange) + "?q=nothing-like-it").content.decode()
    page = admin_client.get(reverse("admin:allocation_interchange_change", args=[row.pk])).content.decode()
    download = reverse("admin:allocation_interchange_download", args=[row.pk])
    assert f'href="{download}"' in page
    assert "pv &amp; &lt;new&gt;.edi" in page  # the file's name is text, not markup
    assert "UNKNOWN_METERING_POINT" in page and "<code>QTY+220:0.5:KWH" in page  # the refusal, with its text
    assert "<td>PV</td>" in page and "<td>5000</td>" in page and "measured 4" in page  # the day's values
    assert 'name="_save"' not in page  # nothing to save


def test_a_refused_interchange_shows_why(admin_client, tenant, operator):
    with pytest.raises(InterchangeError):
        mscons_import(tenant=tenant, actor=operator, source=bytes_source(b"not edifact"), channel="api")
    row = Interchange.objects.get(status=InterchangeStatus.REFUSED)
    page = admin_client.get(reverse("admin:allocation_interchange_change", args=[row.pk])).content.decode()
    assert row.error and row.error.replace("'", "&#x27;") in page


def test_the_download_is_the_original_bytes(admin_client, interchange, tenant, operator):
    row, data = interchange
    response = admin_client.get(reverse("admin:allocation_interchange_download", args=[row.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Content-Type"] == "application/EDIFACT"
    assert response["Content-Disposition"].startswith("attachment;")
    again = mscons_import(tenant=tenant, actor=operator, source=bytes_source(data), channel="api").interchange
    assert again.duplicate_of == row and again.content is None  # kept once, downloadable from each arrival
    response = admin_client.get(reverse("admin:allocation_interchange_download", args=[again.pk]))
    assert b"".join(response.streaming_content) == data
    assert admin_client.get(reverse("admin:allocation_interchange_download", args=[again.pk + 99])).status_code == 404


def test_the_download_needs_the_admin(client, interchange, operator):
    row, _ = interchange
    url = reverse("admin:allocation_interchange_download", args=[row.pk])
    assert client.get(url).status_code == 302  # to the admin's login
    client.force_login(operator)  # not staff
    assert client.get(url).status_code == 302


def test_interchanges_cannot_be_added_changed_or_deleted(admin_client, interchange):
    row, _ = interchange
    assert admin_client.get(reverse("admin:allocation_interchange_add")).status_code == 403
    change = reverse("admin:allocation_interchange_change", args=[row.pk])
    assert admin_client.post(change, {"reference": "OTHER", "status": "refused"}).status_code == 403
    assert admin_client.get(reverse("admin:allocation_interchange_delete", args=[row.pk])).status_code == 403
    response = admin_client.post(
        changelist(Interchange), {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )
    assert response.status_code == 200  # no delete action offered: the list is shown again
    row.refresh_from_db()
    assert (row.reference, row.status) == ("REF4711", InterchangeStatus.IMPORTED)
