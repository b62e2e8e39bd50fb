"""Resolving a clarification case with corrected values: the received payload stays, the correction is kept."""

import pytest

from balance_groups.models import AuditAction, AuditEntry
from core.errors import InvalidInput, PeriodClosed
from core.testing import at, iso
from transactions.clarify import corrected_payload
from transactions.models import Booking, ClarificationCase, ClarificationStatus
from transactions.serializers import ClarificationSerializer
from transactions.services import booking_create, clarification_resolve


@pytest.fixture
def closed_case(tenant, operator, make_group):
    """A booking of PV to FLAT refused because FLAT was closed, then opened again."""
    make_group("PV", "source")
    flat = make_group("FLAT", "consumer", closed_until=at(4))
    payload = {"source": "PV", "destination": "FLAT", "start": iso(at(1)), "end": iso(at(2)), "energy_wh": 1000}
    with pytest.raises(PeriodClosed):
        booking_create(
            tenant=tenant,
            actor=operator,
            source="PV",
            destination="FLAT",
            start=at(1),
            end=at(2),
            energy_wh=1000,
            payload=payload,
        )
    flat.closed_until = None
    flat.save()
    return ClarificationCase.objects.get()


def test_corrected_payload_changes_only_correctable_fields():
    payload = {"group": "APT", "start": "2026-03-10T09:00:00Z", "energy_wh": 5, "quality": "substitute"}
    changes = {"energy_wh": 7, "quality": "measured", "status": "final", "group": "PV"}
    assert corrected_payload(payload, changes, "measurement") == {**payload, "energy_wh": 7, "quality": "measured"}
    assert corrected_payload(payload, {"energy_wh": 9, "quality": "estimated"}, "booking")["quality"] == "substitute"
    assert payload["energy_wh"] == 5  # the received payload itself is never changed


def test_a_corrected_booking_books_the_corrected_energy_and_keeps_the_received_payload(closed_case, operator):
    corrected = corrected_payload(closed_case.payload, {"energy_wh": 1200}, closed_case.subject)
    case = clarification_resolve(case=closed_case, actor=operator, action="rebook", note="meter", corrected=corrected)
    assert case.booking.energy_wh == 1200
    case.refresh_from_db()
    assert (case.status, case.payload["energy_wh"], case.corrected_payload["energy_wh"]) == ("rebooked", 1000, 1200)
    audit = AuditEntry.objects.get(action=AuditAction.CLARIFICATION_REBOOK, object_id=str(case.pk))
    assert audit.data == {"note": "meter", "corrected": corrected}


def test_a_corrected_value_is_validated_like_the_input(closed_case, operator):
    corrected = corrected_payload(closed_case.payload, {"energy_wh": 0}, closed_case.subject)
    with pytest.raises(InvalidInput):
        clarification_resolve(case=closed_case, actor=operator, action="rebook", corrected=corrected)
    closed_case.refresh_from_db()
    assert closed_case.status == ClarificationStatus.OPEN and closed_case.corrected_payload is None
    assert not Booking.objects.exists()


def test_only_a_rebook_takes_corrected_values(closed_case, operator):
    with pytest.raises(InvalidInput, match="Only a case that is rebooked"):
        clarification_resolve(
            case=closed_case, actor=operator, action="dismiss", note="x", corrected=dict(closed_case.payload)
        )


def test_the_api_shape_of_a_case_is_unchanged(closed_case, operator):
    corrected = corrected_payload(closed_case.payload, {"energy_wh": 1200}, closed_case.subject)
    case = clarification_resolve(case=closed_case, actor=operator, action="rebook", corrected=corrected)
    data = ClarificationSerializer(case).data
    assert "corrected_payload" not in data and data["payload"]["energy_wh"] == 1000
