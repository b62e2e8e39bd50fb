"""An EDIFACT interchange as a stream of segments, on pydifact's tokens and segment reader.

The bytes are decoded incrementally in the character set the ``UNB`` declares (the ``UNA`` and
the ``UNB`` up to it are ASCII by the syntax rules), so a large interchange is read with memory
bounded by one chunk. ``UNA`` sets the separators, the decimal mark and the release character.
pydifact's tokenizer takes several calls per character; ``SegmentSplitter`` yields the same
segments about three times as fast (``make bench-mscons`` compares the two in one run).

A segment's position counts every segment of the interchange from 1, ``UNA`` included when it is
there: in a file of one segment per line, the position is the line number.
"""

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pydifact.control import Characters
from pydifact.exceptions import EDISyntaxError
from pydifact.parser import Parser, TokenIterator
from pydifact.tokenizer import Tokenizer

from core.errors import InvalidInput

# ISO 9735 syntax identifiers (UNB 0001) and the character sets they declare.
CHARSETS = {
    "UNOA": "ascii",
    "UNOB": "ascii",
    "UNOC": "iso-8859-1",
    "UNOD": "iso-8859-2",
    "UNOE": "iso-8859-5",
    "UNOF": "iso-8859-7",
    "UNOG": "iso-8859-3",
    "UNOH": "iso-8859-4",
    "UNOI": "iso-8859-6",
    "UNOJ": "iso-8859-8",
    "UNOK": "iso-8859-9",
    "UNOW": "utf-8",
}


# The syntax errors this module raises itself, as people read them (the parser's own stay as they are).
SYNTAX_REASONS = {
    "Newlines after escape characters are not allowed.": gettext_lazy(
        "Newlines after escape characters are not allowed."
    ),
    "An empty segment (a terminator right after another).": gettext_lazy(
        "An empty segment (a terminator right after another)."
    ),
}


class InterchangeError(InvalidInput):
    """The interchange as a whole cannot be read: nothing of it is imported."""

    def __init__(self, detail: str, *, segment: int | None = None):
        if segment:
            detail = _("Segment %(segment)d: %(detail)s") % {"segment": segment, "detail": detail}
        super().__init__(detail, errors={"body": [detail]})
        self.segment = segment


class Segment:
    """One segment: its position, its tag and its data elements (a str, or a list of component strings)."""

    __slots__ = ("elements", "position", "tag")

    def __init__(self, position: int, tag: str, elements: list):
        self.position, self.tag, self.elements = position, tag, elements

    def __repr__(self) -> str:
        return f"Segment({self.position}, {self.tag!r}, {self.elements!r})"

    def value(self, element: int, component: int = 0) -> str:
        """The component of a data element ('' when absent); element 1 is the first after the tag."""
        if element > len(self.elements):
            return ""
        data = self.elements[element - 1]
        if isinstance(data, str):
            return data if component == 0 else ""
        return data[component] if component < len(data) else ""


@dataclass(frozen=True)
class Syntax:
    characters: Characters
    identifier: str  # e.g. "UNOC"
    encoding: str
    has_una: bool

    def text(self, segment: Segment) -> str:
        """The segment written back with the interchange's separators and release character."""
        chars = self.characters
        special = (chars.escape_character, chars.component_separator, chars.data_separator, chars.segment_terminator)

        def escape(text: str) -> str:
            for char in special:  # the release character first, so it is not released twice
                text = text.replace(char, chars.escape_character + char)
            return text

        elements = [
            escape(data) if isinstance(data, str) else chars.component_separator.join(map(escape, data))
            for data in segment.elements
        ]
        return chars.data_separator.join([segment.tag, *elements]) + chars.segment_terminator


PLACEHOLDER_BASE = 0xF0000  # private-use code points stand in for released service characters while splitting


class SegmentSplitter:
    """pydifact's raw segments (``Parser.convert_tokens_to_raw_segments``) from text in chunks.

    pydifact's ``Tokenizer`` takes several calls per character; this splits at the service
    characters with one regular expression per chunk and ``str.split`` per segment, released
    characters held in private-use placeholders meanwhile. The segments are pydifact's (a property
    test compares them); the rare segment that already holds such a code point is handed to
    pydifact's own tokenizer and parser.
    """

    def __init__(self, characters: Characters):
        self.characters = chars = characters
        c, d, t, e = chars.component_separator, chars.data_separator, chars.segment_terminator, chars.escape_character
        self.c, self.d, self.e = c, d, e
        spaces = re.escape("".join(chars.line_terminators))
        release = re.escape(e)
        # a segment: anything but the terminator, released characters included; then the line break after it
        self.segment = re.compile(rf"((?:[^{re.escape(t)}{release}]|{release}[\s\S])*){re.escape(t)}[{spaces}]*")
        self.released = re.compile(rf"{release}([\s\S])")
        self.hide = {char: chr(PLACEHOLDER_BASE + n) for n, char in enumerate((c, d, t, e))}
        self.spaces = "".join(chars.line_terminators)
        self.placeholder = re.compile(f"[{chr(PLACEHOLDER_BASE)}-{chr(PLACEHOLDER_BASE + 3)}]")
        self.placeholders_in_text = False  # per chunk: whether any segment of it needs the slow path

    def _hide(self, match) -> str:
        char = match.group(1)
        if char == "\n":
            raise EDISyntaxError("Newlines after escape characters are not allowed.")
        return self.hide.get(char, char)

    def _split(self, body: str) -> list:
        c = self.c
        escaped = self.e in body
        if escaped:
            if self.placeholders_in_text and self.placeholder.search(body):
                return self._by_pydifact(body)
            body = self.released.sub(self._hide, body)
        raw = []
        for element in body.split(self.d):
            if c in element:
                components = element.split(c)
                while len(components) > 1 and not components[-1]:  # pydifact drops trailing empty components
                    components.pop()
                element = components if len(components) > 1 else components[0]
            raw.append(element)
        if escaped:
            restore = self._restore
            raw = [restore(e) if isinstance(e, str) else [restore(x) for x in e] for e in raw]
        return raw

    def _restore(self, text: str) -> str:
        for char, mark in self.hide.items():
            if mark in text:
                text = text.replace(mark, char)
        return text

    def _by_pydifact(self, body: str) -> list:
        text = body + self.characters.segment_terminator
        tokens = TokenIterator(Tokenizer().get_tokens(text, self.characters))
        return next(Parser(characters=self.characters).convert_tokens_to_raw_segments(tokens))

    def segments(self, chunks: Iterable[str]) -> Iterator[list]:
        pending, after_terminator = "", False
        for chunk in chunks:
            text = pending + chunk
            if after_terminator:
                text = text.lstrip(self.spaces)
            self.placeholders_in_text = self.placeholder.search(text) is not None
            end = 0
            for match in self.segment.finditer(text):
                if match.start() != end:
                    break
                end = match.end()
                body = match.group(1)
                if not body:
                    raise EDISyntaxError("An empty segment (a terminator right after another).")
                yield self._split(body)
            pending = text[end:]
            after_terminator = (end > 0 or after_terminator) and not pending
        if pending:
            raise EDISyntaxError("Unexpected end of EDI messages.")


def _head(chunks: Iterator[bytes]) -> bytes:
    """The first bytes, enough to hold ``UNA`` and the ``UNB`` syntax identifier."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 64:
            break
    return head


def read_syntax(head: bytes) -> tuple[Syntax, int]:
    """The interchange's syntax from its first bytes, and where the ``UNB`` starts."""
    if head.startswith(b"\xef\xbb\xbf"):
        raise InterchangeError(_("The file starts with a byte order mark; an interchange starts with UNA or UNB."))
    has_una = head.startswith(b"UNA")
    if has_una:
        try:
            advice = head[3:9].decode("ascii")
        except UnicodeDecodeError:
            advice = ""
        if len(advice) != 6 or len(set(advice[:4] + advice[5])) != 5:
            raise InterchangeError(_("UNA must give six distinct ASCII service characters."), segment=1)
        characters = Characters.from_str("UNA" + advice)
        start = 9
    else:
        characters = Characters()
        start = 0
    while start < len(head) and head[start : start + 1] in b"\r\n ":
        start += 1
    data_separator = characters.data_separator.encode("ascii")
    if head[start : start + 4] != b"UNB" + data_separator:
        raise InterchangeError(_("This is not an EDIFACT interchange: it does not start with UNA or UNB."))
    identifier = head[start + 4 : start + 8].decode("ascii", errors="replace")
    encoding = CHARSETS.get(identifier)
    if encoding is None:
        raise InterchangeError(
            _("UNB declares the syntax identifier %(identifier)s; known are %(known)s.")
            % {"identifier": repr(identifier), "known": ", ".join(CHARSETS)},
            segment=2 if has_una else 1,
        )
    return Syntax(characters, identifier, encoding, has_una), start


def _text(chunks: Iterable[bytes], encoding: str, identifier: str) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    try:
        for chunk in chunks:
            yield decoder.decode(chunk)
            offset += len(chunk)
        yield decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise InterchangeError(
            _("Byte %(byte)d is not %(encoding)s, the character set %(identifier)s declared in UNB.")
            % {"byte": offset + error.start + 1, "encoding": encoding.upper(), "identifier": identifier}
        ) from None


def read_segments(chunks: Iterable[bytes]) -> tuple[Syntax, Iterator[Segment]]:
    """The syntax of the interchange in ``chunks`` (bytes, in order) and an iterator over its segments.

    Raises ``InterchangeError`` for what cannot be read: here for the head, and from the iterator
    for a syntax error further on.
    """
    stream = iter(chunks)
    head = _head(stream)
    syntax, start = read_syntax(head)

    def rest() -> Iterator[bytes]:
        yield head[start:]
        yield from stream

    def segments() -> Iterator[Segment]:
        position = 1 if syntax.has_una else 0
        if syntax.has_una:
            yield Segment(1, "UNA", [str(syntax.characters)])
        raw_segments = SegmentSplitter(syntax.characters).segments(_text(rest(), syntax.encoding, syntax.identifier))
        try:
            for raw in raw_segments:
                position += 1
                tag = raw[0]
                if not isinstance(tag, str) or not tag.isalnum() or len(tag) != 3:
                    raise InterchangeError(
                        _("%(tag)s is not a segment tag.") % {"tag": repr(str(tag)[:20])}, segment=position
                    )
                yield Segment(position, tag.upper(), raw[1:])
        except EDISyntaxError as error:
            reason = str(error.args[0]) if error.args else "syntax error"
            if "Unexpected end" in reason:
                reason = _("The interchange ends inside a segment: the file is truncated.")
            else:
                reason = str(SYNTAX_REASONS.get(reason, reason))
            raise InterchangeError(reason, segment=position + 1) from None

    return syntax, segments()
