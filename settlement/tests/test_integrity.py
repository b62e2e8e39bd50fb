from settlement.integrity import check_imbalances
from settlement.models import Imbalance
from settlement.tests.conftest import at


def test_imbalance_checks_find_wrong_missing_and_stale_rows(site, book):
    book(site["PV"], site["APT"], at(10), at(11), 1001)
    assert check_imbalances() == []

    Imbalance.objects.filter(group=site["APT"], quarter_start=at(10)).update(inflow_wh=1, net_wh=1)
    Imbalance.objects.filter(group=site["APT"], quarter_start=at(10, 15)).delete()
    Imbalance.objects.create(
        tenant=site["APT"].tenant, group=site["APT"], quarter_start=at(12), inflow_wh=5, outflow_wh=0, net_wh=5
    )
    details = [violation.detail for violation in check_imbalances()]
    assert len(details) == 3
    assert any("imbalance in/out/final 1/0" in detail for detail in details)
    assert any("no imbalance row" in detail for detail in details)
    assert any("imbalance row without lines" in detail for detail in details)
