"""The documents packs cite: their titles, their text where it ships here, and where in that
text a citation's quote stands, so every "why" can point at the sentence it rests on."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

SOURCES_DIR = Path(__file__).parent / "sources"


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    text: str | None = None  # a file beside documents.yaml
    url: str | None = None  # the official text, for a document not shipped here


@functools.cache
def documents() -> dict[str, Document]:
    """Every document a citation may name, by that name."""
    raw = yaml.safe_load((SOURCES_DIR / "documents.yaml").read_text(encoding="utf-8"))
    return {name: Document.model_validate(entry) for name, entry in raw.items()}


@functools.cache
def text_of(name: str) -> str | None:
    """The full text of a cited document, where it ships here."""
    document = documents().get(name)
    if document is None or document.text is None:
        return None
    return (SOURCES_DIR / document.text).read_text(encoding="utf-8")


def find_passage(text: str, quote: str) -> tuple[int, int] | None:
    """Where `quote` stands in `text` (start, end), whatever the line breaks and spacing between
    its words, and with the source's Markdown emphasis ignored; None if it is not there."""
    words = quote.split()
    if not words:
        return None
    gap = r"[\s*_]+"
    pattern = gap.join(re.escape(w) for w in words)
    found = re.search(pattern, text)
    return (found.start(), found.end()) if found else None
