"""Property tests: exact splits, and a stateful comparison of the services with a reference model.

After every step of the state machine: ``ledger_violations()`` (zero-sum, lines = bookings,
status, tenancy, alignment, imbalances, settlement keys, settled windows) is empty, the manual
ledger per group and quarter-hour, the settlement amount and status per (child, parent, window)
and the open clarification cases equal the model's.
"""

import datetime as dt
import itertools
import os
from collections import defaultdict

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from balance_groups.factories import TenantFactory, UserFactory
from balance_groups.models import BalanceGroup
from balance_groups.services import group_close, group_create
from bkm.tests.reliability import figures
from bkm.tests.reliability.model import BASE, QUARTERS, LedgerModel, MBooking, MVersion, index_of, instant
from core.errors import BkmError
from core.integrity import ledger_violations
from core.splitting import split_by_shares, split_energy
from settlement.models import Imbalance, SettlementBooking
from settlement.services import rule_change, settlement_run
from transactions.bulk import bookings_bulk_ingest
from transactions.models import Booking, BookingKind, ClarificationCase, ClarificationStatus, LedgerLine
from transactions.services import booking_create, booking_finalize, booking_reverse, clarification_resolve

SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 1  # examples x SCALE
FAKE_NOW = BASE - dt.timedelta(days=1)  # rule versions inside the window are "future" changes for the services
END = instant(QUARTERS)


# -- splits --------------------------------------------------------------------------------


@settings(max_examples=300 * SCALE, deadline=None)
@given(total=st.integers(0, 10**15), parts=st.integers(1, 400))
def test_split_energy_sums_to_the_total_and_is_fair(total, parts):
    split = split_energy(total, parts)
    figures.add("property_examples")
    assert len(split) == parts
    assert sum(split) == total
    assert max(split) - min(split) <= 1
    assert split == sorted(split, reverse=True)  # the remainder goes to the first parts, deterministically


@st.composite
def share_lists(draw):
    cuts = sorted(draw(st.lists(st.integers(1, 9999), max_size=5, unique=True)))
    bounds = [0, *cuts, 10000]
    return [b - a for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300 * SCALE, deadline=None)
@given(total=st.integers(-(10**15), 10**15), shares=share_lists())
def test_split_by_shares_sums_to_the_total_and_keeps_the_sign(total, shares):
    parts = split_by_shares(total, shares)
    figures.add("property_examples")
    assert sum(parts) == total
    assert all(part * total >= 0 for part in parts)
    for part, share in zip(parts, shares, strict=True):
        # Largest remainder: each part is within 1 Wh of its exact share.
        assert abs(part * 10000 - total * share) < 10000
    assert split_by_shares(-total, shares) == [-part for part in parts]


# -- the state machine ---------------------------------------------------------------------

INTERVALS = ("15min", "1h", "1d")
EXTERNAL_IDS = ("m-1", "m-2", "m-3", "zähler-4")


@st.composite
def targets(draw):
    """Onto MID, onto TOP, or split between both."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return (("MID", 10000),)
    if choice == 1:
        return (("TOP", 10000),)
    share = draw(st.integers(1, 9999))
    return (("MID", share), ("TOP", 10000 - share))


energies = st.one_of(st.integers(1, 50), st.integers(1, 10**7), st.just(10**15))


class LedgerMachine(RuleBasedStateMachine):
    """TOP (root balance) <- MID (balance, daily rule) <- 2-3 sources/consumers with random rules."""

    def __init__(self):
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.model = LedgerModel()
        self.ready = False
        self.steps = 0
        figures.add("stateful_examples")

    def teardown(self):
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)
        figures.add("stateful_steps", self.steps)

    # -- set-up -----------------------------------------------------------------------------

    @initialize(
        leaves=st.lists(
            st.tuples(st.sampled_from(("source", "consumer")), st.sampled_from(INTERVALS), targets()),
            min_size=2,
            max_size=3,
        )
    )
    def build_site(self, leaves):
        LedgerMachine.serial = getattr(LedgerMachine, "serial", 0) + 1
        self.tenant = TenantFactory(code=f"prop-{LedgerMachine.serial}")
        self.actor = UserFactory(tenant=self.tenant, username=f"prop-op-{LedgerMachine.serial}")
        self.groups = {}
        specs = [("TOP", "balance"), ("MID", "balance")] + [(f"L{n}", kind) for n, (kind, _, _) in enumerate(leaves)]
        for code, kind in specs:
            self.groups[code] = group_create(
                tenant=self.tenant, actor=self.actor, code=code, name=f"Gruppe {code} ⚡", kind=kind, valid_from=BASE
            )
            self.model.add_group(code, kind)
        self._change_rule("MID", MVersion(0, "1d", (("TOP", 10000),)))
        for n, (_, interval, chosen) in enumerate(leaves):
            self._change_rule(f"L{n}", MVersion(0, interval, chosen))
        self.leaves = [f"L{n}" for n in range(len(leaves))]
        self.codes = list(self.groups)
        self.ready = True

    def _change_rule(self, code: str, version: MVersion) -> str:
        expected = self.model.change_rule(code, version)
        try:
            rule_change(
                group=self.groups[code],
                actor=self.actor,
                targets=[(self.groups[parent], share) for parent, share in version.targets],
                interval=version.interval,
                effective_from=instant(version.start),
                now=FAKE_NOW,
            )
            outcome = "changed"
        except BkmError as error:
            outcome = error.code
        assert outcome == expected
        return outcome

    # -- steps ------------------------------------------------------------------------------

    def _payload(self, ext, booking: MBooking) -> dict:
        payload = {
            "source": booking.src,
            "destination": self.groups[booking.dst].pk.hex if booking.energy % 2 else booking.dst,
            "start": instant(booking.start).isoformat(),
            "end": instant(booking.end).astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat(),
            "energy_wh": booking.energy,
            "status": booking.status,
            "name": booking.name,
        }
        if ext is not None:
            payload["external_id"] = ext
        return payload

    def _book(self, ext, booking: MBooking, payload) -> tuple:
        try:
            result = booking_create(
                tenant=self.tenant,
                actor=self.actor,
                source=self.groups[booking.src],
                destination=self.groups[booking.dst],
                start=instant(booking.start),
                end=instant(booking.end),
                energy_wh=booking.energy,
                status=booking.status,
                external_id=ext,
                name=booking.name,
                payload=payload,
            )
        except BkmError as error:
            return error.code, None
        return result.outcome, result.booking

    @precondition(lambda self: self.ready)
    @rule(
        data=st.data(),
        ext=st.one_of(st.none(), st.sampled_from(EXTERNAL_IDS)),
        energy=energies,
        final=st.booleans(),
        name=st.sampled_from(("", "Wärmepumpe", "PV → Wohnung 3")),
    )
    def book(self, data, ext, energy, final, name):
        src = data.draw(st.sampled_from(self.codes), label="source")
        dst = data.draw(st.sampled_from(self.codes), label="destination")
        start = data.draw(st.integers(0, QUARTERS - 1), label="start")
        end = data.draw(st.integers(start + 1, min(QUARTERS, start + 8)), label="end")
        booking = MBooking(src, dst, start, end, energy, "final" if final else "provisional", name)
        payload = self._payload(ext, booking)
        expected = self.model.book(ext, booking)
        outcome, stored = self._book(ext, booking, payload)
        assert outcome == expected, (outcome, expected, ext, booking)
        if outcome == "created":
            booking.db_id = stored.pk
        if outcome in ("created", "replaced", "unchanged"):
            assert stored.external_id == ext
        self.steps += 1

    @precondition(lambda self: self.ready)
    @rule(data=st.data(), size=st.integers(1, 6))
    def bulk(self, data, size):
        """A bulk request behaves as its items sent one after another (same model, same order)."""
        items, expected = [], []
        for n in range(size):
            ext = data.draw(st.one_of(st.sampled_from(EXTERNAL_IDS), st.just(f"bulk-{self.steps}-{n}")), label="ext")
            src = data.draw(st.sampled_from(self.codes), label="source")
            dst = data.draw(st.sampled_from(self.codes), label="destination")
            start = data.draw(st.integers(0, QUARTERS - 1), label="start")
            end = data.draw(st.integers(start + 1, min(QUARTERS, start + 8)), label="end")
            energy = data.draw(energies, label="energy")
            status = data.draw(st.sampled_from(("provisional", "provisional", "final")), label="status")
            booking = MBooking(src, dst, start, end, energy, status)
            items.append(self._payload(ext, booking))
            expected.append((ext, self.model.book(ext, booking)))
        result = bookings_bulk_ingest(tenant=self.tenant, actor=self.actor, items=items, channel="bulk")
        outcomes = [outcome for _, outcome in expected]
        assert (result.created, result.replaced, result.unchanged) == (
            outcomes.count("created"),
            outcomes.count("replaced"),
            outcomes.count("unchanged"),
        ), (outcomes, result)
        refused = [(i, outcome) for i, (_, outcome) in enumerate(expected) if outcome.isupper()]
        assert [(entry["index"], entry["code"]) for entry in result.rejected] == refused
        stored = dict(
            Booking.objects.filter(tenant=self.tenant, external_id__in=[ext for ext, _ in expected]).values_list(
                "external_id", "pk"
            )
        )
        for ext, outcome in expected:
            if outcome in ("created", "replaced"):
                self.model.bookings[ext].db_id = stored[ext]
        figures.add("stateful_bulk_items", size)
        self.steps += 1

    def _pick(self, index, kinds=("manual", "reversal")):
        keys = [key for key, b in self.model.bookings.items() if b.kind in kinds]
        return keys[index % len(keys)] if keys else None

    @precondition(lambda self: self.ready and self.model.bookings)
    @rule(index=st.integers(0, 50))
    def finalize(self, index):
        key = self._pick(index)
        expected = self.model.finalize(key)
        booking = booking_finalize(booking=Booking(pk=self.model.bookings[key].db_id), actor=self.actor)
        assert booking.status == expected
        self.steps += 1

    @precondition(lambda self: self.ready and self.model.bookings)
    @rule(index=st.integers(0, 50))
    def reverse(self, index):
        key = self._pick(index)
        expected, reversal = self.model.reverse(key)
        try:
            stored = booking_reverse(booking=Booking(pk=self.model.bookings[key].db_id), actor=self.actor)
            outcome = "reversed"
            reversal.db_id = stored.pk
        except BkmError as error:
            outcome = error.code
        assert outcome == expected
        self.steps += 1

    @precondition(lambda self: self.ready)
    @rule(index=st.integers(0, 50), until=st.integers(0, QUARTERS))
    def close(self, index, until):
        code = self.codes[index % len(self.codes)]
        expected = self.model.close(code, until)
        try:
            group_close(group=self.groups[code], actor=self.actor, until=instant(until))
            outcome = "closed"
        except BkmError as error:
            outcome = error.code
        assert outcome == expected
        self.groups[code].refresh_from_db()
        self.steps += 1

    @precondition(lambda self: self.ready)
    @rule(
        index=st.integers(0, 50), start=st.integers(1, QUARTERS - 1), interval=st.sampled_from(INTERVALS), to=targets()
    )
    def change_rule(self, index, start, interval, to):
        """A new rule version for the part of the window no booking has reached yet (so it is a
        change "in the future" for the data), then a settlement run brings the ledger up to date."""
        code = self.leaves[index % len(self.leaves)]
        old = self.model.versions[code]
        new = [*old, MVersion(start, interval, to)]
        if start > old[-1].start:
            changed = set(self.model.windows(code, old)) ^ set(self.model.windows(code, new))
            if any(self.model.lines_touch(code, w0, w1) for _, w0, w1 in changed):
                return
        outcome = self._change_rule(code, MVersion(start, interval, to))
        if outcome == "changed":
            settlement_run(tenant=self.tenant, start=BASE, end=END, actor=self.actor)
        self.steps += 1

    @precondition(lambda self: self.ready)
    @rule()
    def settle_again(self):
        """Every write settled already (eager): a run over the window changes nothing."""
        run = settlement_run(tenant=self.tenant, start=BASE, end=END)
        assert (run.bookings_created, run.bookings_updated, run.bookings_finalized, run.bookings_deleted) == (
            0,
            0,
            0,
            0,
        )
        self.steps += 1

    @precondition(lambda self: self.ready)
    @rule(index=st.integers(0, 50))
    def settlement_bookings_are_not_manual(self, index):
        settlements = list(Booking.objects.filter(tenant=self.tenant, kind=BookingKind.SETTLEMENT).order_by("pk"))
        if not settlements:
            return
        booking = settlements[index % len(settlements)]
        with pytest.raises(BkmError) as refused:
            booking_reverse(booking=booking, actor=self.actor)
        assert refused.value.code == "CONFLICT"
        if booking.status == "provisional":
            with pytest.raises(BkmError) as refused:
                booking_finalize(booking=booking, actor=self.actor)
            assert refused.value.code == "CONFLICT"
        self.steps += 1

    @precondition(lambda self: self.ready and self.model.open_cases)
    @rule(index=st.integers(0, 50), rebook=st.booleans())
    def resolve_case(self, index, rebook):
        cases = list(
            ClarificationCase.objects.filter(tenant=self.tenant, status=ClarificationStatus.OPEN).order_by("created_at")
        )
        case = cases[index % len(cases)]
        if not rebook:
            clarification_resolve(case=case, actor=self.actor, action="dismiss", note="Zähler getauscht")
            self.model.open_cases -= 1
            self.steps += 1
            return
        payload = case.payload
        ext = payload.get("external_id")
        booking = MBooking(
            payload["source"],
            BalanceGroup.objects.get(tenant=self.tenant, pk=payload["destination"]).code
            if len(payload["destination"]) == 32
            else payload["destination"],
            index_of(dt.datetime.fromisoformat(payload["start"])),
            index_of(dt.datetime.fromisoformat(payload["end"])),
            payload["energy_wh"],
            payload["status"],
            payload["name"],
        )
        expected = self.model.book(ext, booking, keeps_case=False)
        before = Booking.objects.filter(tenant=self.tenant).exclude(kind=BookingKind.SETTLEMENT).count()
        try:
            resolved = clarification_resolve(case=case, actor=self.actor, action="rebook")
            outcome = "rebooked"
        except BkmError as error:
            outcome = error.code
        if expected in ("created", "replaced", "unchanged"):
            assert outcome == "rebooked"
            assert resolved.booking is not None
            if expected == "created":
                booking.db_id = resolved.booking.pk
            self.model.open_cases -= 1
            after = Booking.objects.filter(tenant=self.tenant).exclude(kind=BookingKind.SETTLEMENT).count()
            assert after == before + (expected == "created")  # rebooking makes exactly one booking
        else:
            assert outcome == expected
            case.refresh_from_db()
            assert case.status == ClarificationStatus.OPEN
        self.steps += 1

    # -- the comparison after every step ----------------------------------------------------

    @invariant()
    def ledger_is_consistent(self):
        if not self.ready:
            return
        assert ledger_violations([self.tenant.pk]) == []
        figures.add("ledger_checks_clean")
        lines = list(
            LedgerLine.objects.filter(tenant=self.tenant).values_list(
                "source__code", "destination__code", "quarter_start", "energy_wh", "is_final", "booking__kind"
            )
        )
        # The manual ledger (manual and reversal bookings) per group and quarter-hour.
        manual = defaultdict(lambda: [0, 0])
        for src, dst, quarter, energy, final, kind in lines:
            if kind == BookingKind.SETTLEMENT:
                continue
            q = index_of(quarter)
            manual[(dst, q)][0] += energy
            manual[(src, q)][0] -= energy
            manual[(dst, q)][1] += not final
            manual[(src, q)][1] += not final
        expected_manual = {key: value for key, value in self.model.manual_nets().items() if value != [0, 0]}
        assert {key: value for key, value in manual.items() if value != [0, 0]} == expected_manual

        # Settlement per (child, parent, window): the amount, and final once every input is final.
        actual = defaultdict(lambda: [0, True])
        for link in SettlementBooking.objects.filter(tenant=self.tenant).select_related("booking", "child", "parent"):
            key = (link.child.code, link.parent.code, index_of(link.window_start))
            booking = link.booking
            actual[key][0] += booking.energy_wh if booking.source_id == link.child_id else -booking.energy_wh
            actual[key][1] = actual[key][1] and booking.status == "final"
        expected = self.model.settlements()
        assert {k: v[0] for k, v in actual.items() if v[0]} == {k: v.amount for k, v in expected.items() if v.amount}
        for key, want in expected.items():
            if want.final and key in actual:
                assert actual[key][1], f"settlement {key} stays provisional although its inputs are final"

        # Balances: final exactly when every line of the quarter-hour is final.
        provisional = defaultdict(int)
        for src, dst, quarter, _, final, _ in lines:
            provisional[(src, quarter)] += not final
            provisional[(dst, quarter)] += not final
        for code, quarter, is_final in Imbalance.objects.filter(tenant=self.tenant).values_list(
            "group__code", "quarter_start", "is_final"
        ):
            assert is_final == (provisional[(code, quarter)] == 0)

        open_cases = ClarificationCase.objects.filter(tenant=self.tenant, status=ClarificationStatus.OPEN).count()
        assert open_cases == self.model.open_cases


@pytest.mark.django_db
def test_services_agree_with_the_reference_model():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=20 * SCALE,
            stateful_step_count=20,
            deadline=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
