"""A Griffe extension for the API pages: compmech's docstrings write numpy sections as ``name : what it is``
(the types are in the signature), where numpydoc expects ``name : type`` and the description on the next line.
Read as written, the description would land in the "Type" column. This rewrites, before parsing,
``name : description`` in Parameters / Other Parameters / Attributes into ``name`` + the indented description,
and a description-only line of Returns / Yields into an item with no name and no type (the signature's return
annotation is then shown as its type). A line whose text after the colon reads as a type is left alone.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

_NAMED = {"Parameters", "Other Parameters", "Attributes"}
_UNNAMED = {"Returns", "Yields"}
_TYPE = re.compile(r"[\w.\[\], |'\"()*-]+")


def _looks_like_type(text: str) -> bool:
    text = text.strip()
    return bool(_TYPE.fullmatch(text)) and len(text.split()) <= 3 and not text.endswith(".")


def rewrite(doc: str) -> str:
    """The docstring (as Griffe holds it: dedented) with its numpy-ish section items in numpydoc's form."""
    lines = doc.splitlines()
    out: list[str] = []
    section = None
    for i, line in enumerate(lines):
        if line.strip() and i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip()):
            section = line.strip()  # a section header: its name, then a line of dashes
        elif line and not line[0].isspace() and not re.fullmatch(r"-{3,}", line.strip()):  # an item line
            named = re.fullmatch(r"(\*{0,2}\w+(?:,\s*\w+)*)\s+:\s+(.+)", line)
            if section in _NAMED and named and not _looks_like_type(named.group(2)):
                out += [named.group(1), "    " + named.group(2)]
                continue
            if section in _UNNAMED and not re.match(r"\w+\s*:", line) and not _looks_like_type(line):
                out += [":", "    " + line]
                continue
        out.append(line)
    return "\n".join(out)


class NumpyishDocstrings(Extension):
    """Rewrite every object's docstring (`rewrite`) before mkdocstrings parses it."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None and "---" in obj.docstring.value:
            obj.docstring.value = rewrite(obj.docstring.value)
