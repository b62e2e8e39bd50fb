"""JSON (and, for the MSCONS endpoint, raw EDIFACT bytes), with a size limit answered by 413 and
bad bodies answered by 400, in the error shape.

Every string of a JSON body (keys too) is checked once here against ``core.text`` (no NUL, no
lone surrogate, no control character but tab and line breaks): the request is refused as invalid
input before any view sees it.
Bodies nested deeper than ``MAX_DEPTH`` are refused as unreadable, never a recursion crash, and
so is an object that names a key twice.
"""

import codecs

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import BaseParser, JSONParser, get_encoding
from rest_framework.utils import json

from core.rest.errors import RequestTooLarge
from core.text import text_problem

# The deepest body the API reads is a few levels; anything deeper is refused as unreadable.
MAX_DEPTH = 64


def _refuse_duplicate_keys(pairs: list) -> dict:
    """An object naming a key twice is refused (``json`` would keep the last value silently)."""
    body = dict(pairs)
    if len(body) != len(pairs):
        seen, twice = set(), []
        for key, _ in pairs:
            if key in seen and key not in twice:
                twice.append(key)
            seen.add(key)
        raise ValueError(f"duplicate key(s) {', '.join(repr(key) for key in twice)}")
    return body


def _check_body(data) -> None:
    """Walk the parsed body without recursion: refuse text ``core.text`` refuses, and too deep nesting.

    A bulk body holds hundreds of thousands of strings: each is checked where it is found, and the
    path of a value (``measurements.7.group``) is only spelled out for the one that is refused.
    """
    if isinstance(data, str):
        problem = text_problem(data, free_text=True)
        if problem is not None:
            raise exceptions.ValidationError({"non_field_errors": [problem]})
    pending = [(data, None, 0)] if isinstance(data, dict | list) else []
    while pending:
        value, where, depth = pending.pop()
        if depth >= MAX_DEPTH:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if key.__class__ is str and text_problem(key) is not None:
                raise exceptions.ValidationError({"non_field_errors": [f"A field name: {text_problem(key)}"]})
            if isinstance(item, str):
                problem = text_problem(item, free_text=True)
                if problem is not None:
                    raise exceptions.ValidationError({_path((where, key)): [problem]})
            elif isinstance(item, dict | list):
                pending.append((item, (where, key), depth + 1))


def _path(where) -> str:
    """``(((None, "a"), 7), "b")`` as ``a.7.b``."""
    keys = []
    while where is not None:
        where, key = where
        keys.append(str(key))
    return ".".join(reversed(keys))


def _refuse_declared_too_large(parser_context) -> None:
    request = parser_context.get("request")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if request is not None and limit is not None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes; split it.")


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        _refuse_declared_too_large(parser_context)
        encoding = get_encoding(parser_context)
        try:
            text = codecs.getreader(encoding)(stream).read()
            parse_constant = json.strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant, object_pairs_hook=_refuse_duplicate_keys)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        _check_body(data)
        return data


class EdifactParser(BaseParser):
    """An EDIFACT interchange as the bytes it arrived in: its character set is the one its UNB declares."""

    media_type = "application/edifact"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        _refuse_declared_too_large(parser_context or {})
        if stream is None:
            return b""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        data = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes; split it.")
        return data


class EdifactTextParser(EdifactParser):
    """The same interchange sent as ``text/plain`` (a charset parameter is not read: UNB declares it)."""

    media_type = "text/plain"
