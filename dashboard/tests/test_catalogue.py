"""Every text marked for translation, in a template or in Python, has its German translation in the
catalogue (read with pure Python, so no system gettext is needed)."""

import ast
import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.utils.translation.template import templatize

BASE = Path(settings.BASE_DIR)
CATALOGUE = BASE / "locale" / "de" / "LC_MESSAGES" / "django.po"
SKIPPED = {".venv", "staticfiles", "static", "bench", "test-output", "node_modules"}
GETTEXT = {"_", "gettext", "gettext_lazy", "gettext_noop"}
NGETTEXT = {"ngettext", "ngettext_lazy"}
PGETTEXT = {"pgettext", "pgettext_lazy"}
# templatize turns {% translate %} and {% blocktranslate %} into gettext(u'...') / ngettext(u'...', u'...', n).
LITERAL = r"""(u?(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))"""
TEMPLATE_CALL = re.compile(rf"\b(n?gettext)\({LITERAL}(?:, {LITERAL})?")


def _sources(pattern: str):
    for path in sorted(BASE.rglob(pattern)):
        parts = set(path.relative_to(BASE).parts)
        if not parts & SKIPPED and "tests" not in parts:
            yield path


def _from_templates() -> set:
    found = set()
    for path in _sources("*.html"):
        for function, singular, plural in TEMPLATE_CALL.findall(templatize(path.read_text(), origin=str(path))):
            plural = ast.literal_eval(plural) if function == "ngettext" and plural else None
            found.add((None, ast.literal_eval(singular), plural))
    return found


def _from_python() -> set:
    found = set()
    for path in _sources("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            texts = [
                arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None for arg in node.args
            ]
            if name in GETTEXT and texts[0]:
                found.add((None, texts[0], None))
            elif name in NGETTEXT and len(texts) > 1 and texts[0] and texts[1]:
                found.add((None, texts[0], texts[1]))
            elif name in PGETTEXT and len(texts) > 1 and texts[0] and texts[1]:
                found.add((texts[0], texts[1], None))
    return found


@pytest.mark.django_db(False)
def test_every_marked_text_has_a_german_translation():
    catalogue = {(entry.msgctxt, entry.msgid): entry for entry in polib.pofile(str(CATALOGUE))}
    marked = _from_templates() | _from_python()
    assert len(marked) > 100  # the extraction found the dashboard's texts
    assert any(context for context, _, _ in marked)  # and the texts with a context
    missing = sorted(msgid for context, msgid, _ in marked if (context, msgid) not in catalogue)
    assert missing == [], "not in the catalogue: run make messages"
    untranslated = sorted(
        msgid
        for context, msgid, _ in marked
        if "fuzzy" in catalogue[context, msgid].flags or not catalogue[context, msgid].translated()
    )
    assert untranslated == []
    plural_mismatch = sorted(
        msgid for context, msgid, plural in marked if plural and catalogue[context, msgid].msgid_plural != plural
    )
    assert plural_mismatch == []
