"""Domain errors speak the active language when they are raised; the API always answers in English."""

import datetime as dt

import pytest
from django.utils import translation

from core.errors import InvalidInput, InvalidTimeAlignment, PeriodClosed
from core.quarters import require_aligned, require_window
from core.text import Message, instant_text

UTC = dt.UTC
OFF_GRID = dt.datetime(2026, 12, 2, 9, 7, tzinfo=UTC)  # 10:07 in Berlin (CET)


def test_an_instant_is_shown_in_local_time_with_the_zone_in_each_language():
    assert instant_text(OFF_GRID) == "2026-12-02 10:07 (Europe/Berlin)"
    with translation.override("de"):
        assert instant_text(OFF_GRID) == "02.12.2026 10:07 (Europe/Berlin)"
    assert instant_text(OFF_GRID.replace(minute=0, second=30)) == "2026-12-02 10:00:30 (Europe/Berlin)"
    summer = dt.datetime(2026, 7, 1, 22, 0, tzinfo=UTC)
    assert instant_text(summer) == "2026-07-02 00:00 (Europe/Berlin)"  # CEST: the local date is the next day


def test_an_english_raise_reads_as_a_sentence_without_the_raw_field_name():
    with pytest.raises(InvalidTimeAlignment) as raised:
        require_aligned(OFF_GRID, "start")
    message = "The start 2026-12-02 10:07 (Europe/Berlin) is not on a quarter-hour boundary (:00, :15, :30, :45)."
    assert raised.value.detail == message
    assert raised.value.errors == {"start": [message]}
    with pytest.raises(InvalidInput) as raised:
        require_window(OFF_GRID.replace(minute=15), OFF_GRID.replace(minute=0))
    assert raised.value.errors == {"end": ["The end must be after the start."]}


def test_a_german_raise_gives_german_text_and_the_german_instant_format():
    with translation.override("de"), pytest.raises(InvalidTimeAlignment) as raised:
        require_aligned(OFF_GRID, "effective_from")
    assert raised.value.detail == (
        "Der Gültigkeitsbeginn 02.12.2026 10:07 (Europe/Berlin) liegt nicht auf einer Viertelstundengrenze "
        "(:00, :15, :30, :45)."
    )
    assert raised.value.code == "INVALID_TIME_ALIGNMENT"  # codes never change with the language
    with translation.override("de"), pytest.raises(InvalidInput) as raised:
        require_window(OFF_GRID.replace(minute=15), OFF_GRID.replace(minute=0))
    assert raised.value.errors == {"end": ["Das Ende muss nach dem Beginn liegen."]}


def test_the_api_answers_in_english_whatever_the_client_accepts(api, api_site):
    body = {
        "source": "PV-ROOF",
        "destination": "HOUSE",
        "start": "2026-12-02T09:07:00Z",
        "end": "2026-12-02T10:00:00Z",
        "energy_wh": 100,
    }
    response = api.post("/api/v1/bookings/", body, format="json", HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_TIME_ALIGNMENT"
    assert response.json()["errors"]["start"] == [
        "The start 2026-12-02 10:07 (Europe/Berlin) is not on a quarter-hour boundary (:00, :15, :30, :45)."
    ]
    assert "Viertelstunde" not in response.content.decode()


def test_a_message_kept_as_json_reads_again_in_another_language():
    closed = dt.datetime(2026, 3, 10, 23, tzinfo=dt.UTC)
    msgid = "Group %(code)s is closed until %(closed_until)s; the measurement is for %(start)s."
    with translation.override("en"):
        error = PeriodClosed(Message(msgid, {"code": "APT", "closed_until": closed, "start": closed}))
    assert error.detail == (
        "Group APT is closed until 2026-03-11 00:00 (Europe/Berlin); the measurement is for 2026-03-11 00:00 "
        "(Europe/Berlin)."
    )
    kept = Message.from_json(error.message.as_json())
    with translation.override("de"):
        assert str(kept) == (
            "Der Bilanzkreis APT ist bis 11.03.2026 00:00 (Europe/Berlin) abgeschlossen; der Messwert gilt für "
            "11.03.2026 00:00 (Europe/Berlin)."
        )
    assert InvalidInput("plain text").message is None
