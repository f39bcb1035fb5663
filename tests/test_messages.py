"""The pages' message catalogue (static/messages.js): both languages complete, every key a page uses defined."""

from __future__ import annotations

import json
import re
from pathlib import Path

from relay.web.pages import STATIC

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def catalogue() -> dict[str, dict[str, str]]:
    text = (STATIC / "messages.js").read_text(encoding="utf-8")
    body = text[text.index("{") : text.rindex("}") + 1]
    return json.loads(body)


def keys_used() -> dict[str, set[str]]:
    """key -> the files that use it: data-i18n, data-i18n-attr and t("...") calls."""
    used: dict[str, set[str]] = {}
    patterns = [r'data-i18n="([\w.]+)"', r'\bt\("([\w.]+)"']
    for path in sorted(STATIC.iterdir()):
        if path.suffix not in (".html", ".js") or path.name == "i18n.js":  # the mechanism, not a page
            continue
        text = path.read_text(encoding="utf-8")
        found = [m for p in patterns for m in re.findall(p, text)]
        for attrs in re.findall(r'data-i18n-attr="([^"]+)"', text):
            found += [pair.split(":")[1].strip() for pair in attrs.split(";") if ":" in pair]
        for key in found:
            used.setdefault(key, set()).add(path.name)
    return used


def test_both_languages_have_the_same_keys_and_no_empty_text() -> None:
    messages = catalogue()
    assert set(messages) == {"en", "ko"}
    assert set(messages["en"]) == set(messages["ko"])
    assert all(text.strip() for lang in messages.values() for text in lang.values())


def test_korean_is_korean() -> None:
    untranslated = [k for k, text in catalogue()["ko"].items() if not HANGUL.search(text)]
    assert untranslated == []


def test_every_key_a_page_uses_is_in_the_catalogue() -> None:
    used = keys_used()
    assert used, "no page uses the catalogue"
    missing = {key: sorted(files) for key, files in used.items() if key not in catalogue()["en"]}
    assert missing == {}


def test_placeholders_match_across_languages() -> None:
    messages = catalogue()
    for key, english in messages["en"].items():
        assert set(re.findall(r"\{(\w+)\}", english)) == set(re.findall(r"\{(\w+)\}", messages["ko"][key])), key


def test_the_pages_load_the_catalogue_through_i18n() -> None:
    for page in ("login.html", "customer.html", "counselor.html", "supervisor.html", "qa.html"):
        script = re.search(r'src="/static/(\w+\.js)"', (STATIC / page).read_text(encoding="utf-8"))
        assert script and "translatePage()" in (STATIC / script.group(1)).read_text(encoding="utf-8"), page
    assert Path(STATIC / "i18n.js").read_text(encoding="utf-8").count('from "/static/messages.js"') == 1
