"""Text in and out.

In: the one rule for text the product takes in: no NUL, no lone surrogates, no control characters.
PostgreSQL text cannot hold NUL, a lone surrogate cannot be encoded at all, and control characters
in a code or a name break CSV files and pages. Free text (a note) may hold tabs and line breaks.

Out: instants and field names as messages show them to people, in the active language: an instant
in the site's local time with the zone named (``instant_text``), a day as the language writes it
(``day_text``), a field by its name in words
(``field_label``), so that no message leads with a raw field name or a UTC ISO string.
"""

import datetime as dt
import re
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import get_language, gettext, gettext_lazy

from core.errors import InvalidInput

NUL_MESSAGE = gettext_lazy("Text may not contain the NUL character (\\u0000).")
SURROGATE_MESSAGE = gettext_lazy("Text may not contain a lone surrogate (\\ud800 to \\udfff); send valid UTF-8.")
CONTROL_MESSAGE = gettext_lazy("Text may not contain control characters (\\u0000 to \\u001f, \\u007f to \\u009f).")

_IN_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_IN_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# Local time as each language writes it; the zone is always named, so no reader takes it for UTC.
_INSTANT_FORMATS = {"de": "%d.%m.%Y %H:%M", "en": "%Y-%m-%d %H:%M"}
_DAY_FORMATS = {"de": "%d.%m.%Y", "en": "%Y-%m-%d"}

# A field as the subject of a sentence ("The start ... is not on a quarter-hour boundary").
_FIELD_LABELS = {
    "start": gettext_lazy("The start"),
    "end": gettext_lazy("The end"),
    "until": gettext_lazy("The end of the period"),
    "valid_from": gettext_lazy("The start of validity"),
    "valid_until": gettext_lazy("The end of validity"),
    "effective_from": gettext_lazy("The effective start"),
    "month": gettext_lazy("The month"),
}
_GENERIC_FIELD = gettext_lazy("The time")


def site_zone() -> ZoneInfo:
    """The zone of the site: local days, months and every instant shown to people are cut in it."""
    return ZoneInfo(settings.SITE_TIME_ZONE)


def _language() -> str:
    return "de" if (get_language() or "en").startswith("de") else "en"


def instant_text(instant: dt.datetime) -> str:
    """An aware instant for a message: ``2026-12-02 10:07 (Europe/Berlin)`` in English,
    ``02.12.2026 10:07 (Europe/Berlin)`` in German."""
    zone = site_zone()
    text = format(instant.astimezone(zone), _INSTANT_FORMATS[_language()])
    if instant.second or instant.microsecond:  # an instant off the minute says so, or it would look aligned
        text += f":{instant.second:02d}" + (f".{instant.microsecond:06d}" if instant.microsecond else "")
    return f"{text} ({zone.key})"


def day_text(day: dt.date) -> str:
    """A local day for a message: ``2026-11-03`` in English, ``03.11.2026`` in German."""
    return format(day, _DAY_FORMATS[_language()])


class Message:
    """A text for people that can be read again in another language: its English msgid (marked
    with ``gettext_noop`` where it is written) and its values, instants kept as instants. A
    clarification case stores it, so a case recorded through the English API reads German on a
    German dashboard. ``str()`` renders it in the active language."""

    def __init__(self, msgid: str, values: dict | None = None):
        self.msgid = msgid
        self.values = dict(values or {})

    def __str__(self) -> str:
        shown = {key: instant_text(v) if isinstance(v, dt.datetime) else v for key, v in self.values.items()}
        return gettext(self.msgid) % shown

    def as_json(self) -> dict:
        values = {
            key: {"instant": v.isoformat()} if isinstance(v, dt.datetime) else v for key, v in self.values.items()
        }
        return {"msgid": self.msgid, "values": values}

    @classmethod
    def from_json(cls, data: dict) -> "Message":
        values = {
            key: dt.datetime.fromisoformat(v["instant"]) if isinstance(v, dict) and "instant" in v else v
            for key, v in data["values"].items()
        }
        return cls(data["msgid"], values)


def field_label(field: str) -> str:
    """The field as the subject of a sentence in the active language; an unnamed one is "The time"."""
    return str(_FIELD_LABELS.get(field, _GENERIC_FIELD))


def text_problem(value: str, *, free_text: bool = False) -> str | None:
    """Why ``value`` cannot be stored (in the active language), or None."""
    found = (_IN_FREE_TEXT if free_text else _IN_ONE_LINE).search(value)
    if found is None:
        return None
    character = found.group()
    if character == "\x00":
        return str(NUL_MESSAGE)
    if "\ud800" <= character <= "\udfff":
        return str(SURROGATE_MESSAGE)
    return str(CONTROL_MESSAGE)


def require_clean_text(value: str, field: str, *, free_text: bool = False) -> str:
    problem = text_problem(value, free_text=free_text)
    if problem is not None:
        raise InvalidInput.for_field(field, problem)
    return value
