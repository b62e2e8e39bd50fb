"""A service's refusal as form errors, each message at the form field it concerns.

The services word their messages for people (``core.errors.BkmError``, ``.errors`` maps their field
names to messages); the dashboard maps their field names onto its form fields. A message that still
carries an ISO instant or a raw field name is shown with the local time and the field's label.
"""

import datetime as dt
import re
from collections.abc import Callable

from core.errors import BkmError
from dashboard.templatetags.formatting import local_zone

ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})")


def plain_label(form, name: str) -> str:
    """A field's label without the zone an instant field adds to it."""
    field = form.fields[name]
    return str(getattr(field, "plain_label", None) or field.label or name)


def _local(iso: str) -> str:
    return local_zone(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")))


def readable(message: str, labels: dict[str, str]) -> str:
    """The message with ISO instants in local time (zone named) and raw field names as labels."""
    text = ISO_INSTANT.sub(lambda found: _local(found.group()), message)
    for name, label in labels.items():
        if "_" in name:  # only names no sentence uses as a word: valid_from, effective_from, ...
            text = re.sub(rf"\b{re.escape(name)}\b", f"“{label}”", text)
    return text


Route = str | Callable[[str], str | None]


def apply_service_error(
    form, error: BkmError, *, field_map: dict[str, Route] | None = None, detail_field: str | None = None
) -> None:
    """Show a service's refusal on the form, each message at the field it concerns.

    ``field_map`` maps a service field to a form field, or to a function of the message that picks
    the form field. ``detail_field`` takes a refusal that names no field. A message whose field the
    form lacks is shown above the form.
    """
    field_map = field_map or {}
    labels = {name: plain_label(form, name) for name in form.fields}
    entries = [(field, str(message)) for field, messages in (error.errors or {}).items() for message in messages]
    for service_field, message in entries or [(None, str(error.detail))]:
        route = field_map.get(service_field, service_field) if service_field else detail_field
        target = route(message) if callable(route) else route
        form.add_error(target if target in form.fields else None, readable(message, labels))
