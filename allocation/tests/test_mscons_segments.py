"""The segment splitter yields pydifact's own segments, wherever the chunks are cut.

The reference is pydifact's ``Tokenizer`` and ``Parser.convert_tokens_to_raw_segments``. Where
pydifact itself goes astray the splitter is stricter, and the generated text leaves those cases
out (each is asserted on its own below): pydifact skips a *released* space or line break right
after a terminator as if it were the line break between segments, turns an empty segment into a
segment named by the terminator, and ends quietly inside a segment that a separator cut off.
"""

import itertools
import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pydifact.control import Characters
from pydifact.exceptions import EDISyntaxError
from pydifact.parser import Parser, TokenIterator
from pydifact.tokenizer import Tokenizer

from allocation.mscons.reader import PLACEHOLDER_BASE, SegmentSplitter

ALPHABET = "AB19:+?'.,\n\r x|*#!ü" + chr(PLACEHOLDER_BASE + 1)
UNAS = [":+.? '", "|*.# !"]


def pydifact_segments(text: str, characters) -> tuple[list, bool]:
    out = []
    try:
        tokens = TokenIterator(Tokenizer().get_tokens(text, characters))
        for segment in Parser(characters=characters).convert_tokens_to_raw_segments(tokens):
            out.append(segment)
    except EDISyntaxError:
        return out, True
    return out, False


def split_segments(chunks: list[str], characters) -> tuple[list, bool]:
    out = []
    try:
        for segment in SegmentSplitter(characters).segments(chunks):
            out.append(segment)
    except EDISyntaxError:
        return out, True
    return out, False


def cut(text: str, points: list[int]) -> list[str]:
    bounds = [0, *sorted(min(p, len(text)) for p in points), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=3000, deadline=None)
@given(
    text=st.text(alphabet=ALPHABET, max_size=60),
    points=st.lists(st.integers(0, 60), max_size=5),
    una=st.sampled_from(UNAS),
)
@example(text="QTY+220:1.5:KWH'DTM+163:202601010000?+00:303'\n", points=[17, 18], una=UNAS[0])
@example(text="A?'B'", points=[], una=UNAS[0])
@example(text="A+B:C::'D:'E?:F??+G'", points=[3, 4], una=UNAS[0])
@example(text="A'\r\n  B'", points=[2, 3], una=UNAS[0])
@example(text="??\n'", points=[], una=UNAS[0])
@example(text="A?\n'", points=[], una=UNAS[0])
def test_same_segments_as_pydifact(text, points, una):
    characters = Characters.from_str("UNA" + una)
    terminator, release = re.escape(una[5]), re.escape(una[3])
    assume(not re.search(rf"{terminator}[ \r\n]*{release}[ \r\n]", text))  # a released space after a terminator
    assume(not re.search(rf"(^|[^{release}]|{release}{release}){terminator}[ \r\n]*{terminator}", text))  # empty
    assume(not re.match(rf"[ \r\n]*{terminator}", text))  # an empty first segment
    expected, pydifact_raised = pydifact_segments(text, characters)
    segments, raised = split_segments(cut(text, points), characters)
    assert segments == expected
    assert raised or not pydifact_raised


@pytest.mark.parametrize(
    ("text", "segments", "raised"),
    [
        ("A'? B'", [["A"], [" B"]], False),  # pydifact drops the released space
        ("A''B'", [["A"]], True),  # pydifact yields a segment named "'"
        ("A'B+", [["A"]], True),  # pydifact ends quietly
    ],
)
def test_where_the_splitter_is_stricter_than_pydifact(text, segments, raised):
    characters = Characters.from_str("UNA:+.? '")
    assert split_segments([text], characters) == (segments, raised)
