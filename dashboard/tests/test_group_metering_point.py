"""The group forms carry the metering point (MaLo/MeLo) with the services' refusals next to the field."""

import pytest
from django.urls import reverse

from balance_groups.models import BalanceGroup

pytestmark = pytest.mark.django_db

MELO = "DE0001234567890000000000000000001"


def test_create_and_edit_a_group_with_a_metering_point(client_in, tenant):
    data = {"code": "WP", "name": "Wärmepumpe", "kind": "consumer", "valid_from": "2026-03-01T00:00"}
    response = client_in.post(reverse("dashboard:group-create"), {**data, "metering_point": f" {MELO} "})
    assert response.status_code == 302
    group = BalanceGroup.objects.get(tenant=tenant, code="WP")
    assert group.metering_point == MELO
    url = reverse("dashboard:group-edit", args=[group.pk])
    assert client_in.get(url).context["form"]["metering_point"].value() == MELO
    edit = {"code": "WP", "name": "Wärmepumpe", "valid_from": "2026-03-01T00:00", "valid_until": ""}
    response = client_in.post(url, {**edit, "metering_point": ""}, follow=True)
    group.refresh_from_db()
    assert group.metering_point is None
    assert "saved (Metering point)" in response.content.decode()
    response = client_in.post(url, {**edit, "metering_point": "51238696781"}, follow=True)
    group.refresh_from_db()
    assert group.metering_point == "51238696781"
    assert "saved (Metering point)" in response.content.decode()


@pytest.mark.parametrize(
    ("value", "message"),
    [("DE 0001", "letters or digits"), (MELO, "already"), ("PV", "code of another group")],
)
def test_a_refused_metering_point_is_shown_at_its_field(client_in, site, value, message):
    site["APT"].metering_point = MELO
    site["APT"].save()
    data = {"code": "WP", "name": "Wärmepumpe", "kind": "consumer", "valid_from": "2026-03-01T00:00"}
    response = client_in.post(reverse("dashboard:group-create"), {**data, "metering_point": value})
    assert response.status_code == 400
    assert message in response.context["form"].errors["metering_point"][0]
    assert not BalanceGroup.objects.filter(code="WP").exists()


def test_the_group_admin_sets_a_metering_point(admin_client, site):
    group = site["PV"]
    url = reverse("admin:balance_groups_balancegroup_change", args=[group.pk])
    form = {
        "code": "PV",
        "name": group.name,
        "valid_from_0": "2026-01-01",
        "valid_from_1": "00:00:00",
        "valid_until_0": "",
        "valid_until_1": "",
        "metering_point": " 51238696781 ",
    }
    assert admin_client.post(url, form).status_code == 302
    group.refresh_from_db()
    assert group.metering_point == "51238696781"
    response = admin_client.post(url, {**form, "metering_point": "5123-8696"})
    assert response.status_code == 200 and "letters or digits" in response.content.decode()
    assert (
        admin_client.get(reverse("admin:balance_groups_balancegroup_changelist") + "?q=51238696781").status_code == 200
    )
