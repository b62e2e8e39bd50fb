"""The one rule for text the product takes in: no NUL, no lone surrogates, no control characters.

PostgreSQL text cannot hold NUL, a lone surrogate cannot be encoded at all, and control characters
in a code or a name break CSV files and pages. Free text (a note) may hold tabs and line breaks.
"""

import re

from core.errors import InvalidInput

NUL_MESSAGE = "Text may not contain the NUL character (\\u0000)."
SURROGATE_MESSAGE = "Text may not contain a lone surrogate (\\ud800 to \\udfff); send valid UTF-8."
CONTROL_MESSAGE = "Text may not contain control characters (\\u0000 to \\u001f, \\u007f to \\u009f)."

_IN_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_IN_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(value: str, *, free_text: bool = False) -> str | None:
    """Why ``value`` cannot be stored, or None."""
    found = (_IN_FREE_TEXT if free_text else _IN_ONE_LINE).search(value)
    if found is None:
        return None
    character = found.group()
    if character == "\x00":
        return NUL_MESSAGE
    if "\ud800" <= character <= "\udfff":
        return SURROGATE_MESSAGE
    return CONTROL_MESSAGE


def require_clean_text(value: str, field: str, *, free_text: bool = False) -> str:
    problem = text_problem(value, free_text=free_text)
    if problem is not None:
        raise InvalidInput.for_field(field, f"{field}: {problem}")
    return value
