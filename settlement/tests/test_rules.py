import datetime as dt

import pytest

from core.errors import InvalidInput, InvalidTimeAlignment
from core.testing import T0, UTC
from settlement.models import SettlementRule
from settlement.selectors import hierarchy_tree, rule_in_force
from settlement.services import rule_change
from settlement.tests.conftest import NOW


@pytest.fixture
def site(make_group):
    return {
        "GRID": make_group("GRID"),
        "HOUSE": make_group("HOUSE"),
        "PV": make_group("PV", "source"),
        "APT": make_group("APT", "consumer"),
    }


def test_first_rule_may_start_at_valid_from_for_history(site, operator):
    rule = rule_change(group=site["PV"], actor=operator, targets=[(site["GRID"], 10000)], effective_from=T0, now=NOW)
    assert rule.effective_from == T0
    assert rule_in_force(group=site["PV"], at=T0) == rule


def test_first_rule_may_not_start_before_valid_from(site, operator):
    with pytest.raises(InvalidInput):
        rule_change(
            group=site["PV"], actor=operator, targets=[(site["GRID"], 10000)], effective_from=T0 - dt.timedelta(days=1)
        )


def test_later_version_starts_at_next_quarter_hour_and_ends_the_previous(site, operator):
    first = rule_change(group=site["PV"], actor=operator, targets=[(site["GRID"], 10000)], effective_from=T0, now=NOW)
    second = rule_change(group=site["PV"], actor=operator, targets=[(site["HOUSE"], 10000)], interval="1h", now=NOW)
    assert second.effective_from == dt.datetime(2026, 6, 1, 10, 15, tzinfo=UTC)
    first.refresh_from_db()
    assert first.effective_until == second.effective_from
    assert rule_in_force(group=site["PV"], at=dt.datetime(2026, 6, 1, 10, 14, tzinfo=UTC)) == first
    assert rule_in_force(group=site["PV"], at=second.effective_from) == second
    assert SettlementRule.objects.filter(group=site["PV"]).count() == 2


def test_later_version_never_retroactive(site, operator):
    rule_change(group=site["PV"], actor=operator, targets=[(site["GRID"], 10000)], effective_from=T0, now=NOW)
    for effective_from in (dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC), T0 + dt.timedelta(days=1)):
        with pytest.raises(InvalidInput) as error:
            rule_change(
                group=site["PV"],
                actor=operator,
                targets=[(site["HOUSE"], 10000)],
                effective_from=effective_from,
                now=NOW,
            )
        assert "effective_from" in error.value.errors
    with pytest.raises(InvalidTimeAlignment):
        rule_change(
            group=site["PV"],
            actor=operator,
            targets=[(site["HOUSE"], 10000)],
            effective_from=dt.datetime(2026, 6, 1, 11, 5, tzinfo=UTC),
            now=NOW,
        )


def test_split_targets_must_sum_to_10000_and_be_balances(site, operator):
    with pytest.raises(InvalidInput, match="10000"):
        rule_change(group=site["APT"], actor=operator, targets=[(site["GRID"], 6000), (site["HOUSE"], 3000)])
    with pytest.raises(InvalidInput, match="balances"):
        rule_change(group=site["APT"], actor=operator, targets=[(site["PV"], 10000)])
    rule = rule_change(
        group=site["APT"], actor=operator, targets=[(site["GRID"], 6000), (site["HOUSE"], 4000)], effective_from=T0
    )
    assert sorted(target.share for target in rule.targets.all()) == [4000, 6000]


def test_rule_that_would_create_a_cycle_is_refused(site, operator):
    rule_change(group=site["HOUSE"], actor=operator, targets=[(site["GRID"], 10000)], effective_from=T0)
    with pytest.raises(InvalidInput, match="cycle"):
        rule_change(group=site["GRID"], actor=operator, targets=[(site["HOUSE"], 10000)], effective_from=T0)
    with pytest.raises(InvalidInput):
        rule_change(group=site["GRID"], actor=operator, targets=[(site["GRID"], 10000)], effective_from=T0)


def test_target_of_another_tenant_is_refused(site, operator, other_tenant, make_group):
    foreign = make_group("FOREIGN", tenant=other_tenant)
    with pytest.raises(InvalidInput):
        rule_change(group=site["PV"], actor=operator, targets=[(foreign, 10000)], effective_from=T0)


def test_hierarchy_tree_follows_rules_in_force(site, operator):
    rule_change(group=site["HOUSE"], actor=operator, targets=[(site["GRID"], 10000)], effective_from=T0)
    rule_change(
        group=site["APT"], actor=operator, targets=[(site["HOUSE"], 6000), (site["GRID"], 4000)], effective_from=T0
    )
    rule_change(group=site["PV"], actor=operator, targets=[(site["GRID"], 10000)], effective_from=T0)
    roots = hierarchy_tree(tenant=site["GRID"].tenant, at=T0)
    assert [node.group.code for node in roots] == ["GRID"]
    grid = roots[0]
    assert [node.group.code for node in grid.children] == ["HOUSE", "PV"]
    assert [node.group.code for node in grid.children[0].children] == ["APT"]


def test_a_first_rule_in_the_past_settles_the_history_already_booked(
    site, operator, book, broker_mode, django_capture_on_commit_callbacks
):
    """Loading history: bookings first, then the group's first rule from its valid_from. The days
    that hold its data are marked at once and settled by the next job, not by chance."""
    from settlement.models import DirtyDay, SettlementBooking
    from settlement.services import settlement_dirty_process
    from settlement.tests.conftest import at

    book(site["PV"], site["APT"], at(10), at(11), 1001)
    settlement_dirty_process(tenant_id=site["PV"].tenant_id)  # the write's own day is done
    assert not DirtyDay.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        rule_change(group=site["PV"], actor=operator, targets=[(site["GRID"], 10000)], effective_from=T0, now=NOW)
    assert list(DirtyDay.objects.values_list("day_start", flat=True)) == [at(-1)]  # the local day of at(10)
    assert ("settle_dirty", site["PV"].tenant_id) in broker_mode  # enqueued on commit, like a write

    settlement_dirty_process(tenant_id=site["PV"].tenant_id)
    assert SettlementBooking.objects.filter(child=site["PV"]).count() == 4


@pytest.mark.parametrize(
    ("interval", "takes_effect"),
    [
        ("15min", dt.datetime(2026, 6, 1, 10, 15, tzinfo=UTC)),
        ("1h", dt.datetime(2026, 6, 1, 11, 0, tzinfo=UTC)),  # the next full hour
        ("1d", dt.datetime(2026, 6, 1, 22, 0, tzinfo=UTC)),  # the next local midnight (CEST)
    ],
)
def test_a_change_really_starts_at_the_next_window_of_the_rule_in_force(site, operator, interval, takes_effect):
    first = rule_change(
        group=site["PV"], actor=operator, targets=[(site["GRID"], 10000)], interval=interval, effective_from=T0, now=NOW
    )
    assert first.takes_effect_at == T0  # a first version starts where it says
    second = rule_change(group=site["PV"], actor=operator, targets=[(site["HOUSE"], 10000)], now=NOW)
    assert second.effective_from == dt.datetime(2026, 6, 1, 10, 15, tzinfo=UTC)
    assert second.takes_effect_at == takes_effect


def test_the_api_says_when_a_change_takes_effect(site, operator):
    from rest_framework.test import APIClient

    from balance_groups.services import api_client_create

    rule_change(
        group=site["PV"], actor=operator, targets=[(site["GRID"], 10000)], interval="1h", effective_from=T0, now=NOW
    )
    later = rule_change(group=site["PV"], actor=operator, targets=[(site["HOUSE"], 10000)], now=NOW)
    _, key = api_client_create(tenant=site["PV"].tenant, name="reader")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    body = api.get(f"/api/v1/settlement-rules/{later.pk}/").json()
    assert (body["effective_from"], body["takes_effect"]) == ("2026-06-01T10:15:00Z", "2026-06-01T11:00:00Z")
