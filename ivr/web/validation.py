"""What any value a client sends must be, checked in one place before a handler sees it.

``ivr.web.api.read_json`` runs :func:`clean_document` on every JSON body. Every
text field of the API is one line (names, activities, notes read to callers by
TTS, codes, dial strings): line breaks and tabs, which a text pasted from a
letter carries, become single spaces, and invisible characters at either end
(zero-width spaces, a byte-order mark) go, so that a field of nothing visible
is empty and "required" says so. Then every field of every route, nested
ones included (``shifts[0].levels[1].officers[2]``), is refused with 422 and one
message per field when it holds:

- text that is not UTF-8: a lone surrogate (``"\\ud800"``), which JSON's
  ``\\u`` escapes can carry but neither the database driver nor a log file can
  encode;
- any other control character: NUL (PostgreSQL refuses it in text), ESC (a
  terminal escape in the logs), the other C0 and C1 controls and DEL;
- a bidirectional override or isolate, which makes a name read otherwise than
  it is stored;
- an integer no column holds: ids and counts are 32-bit (asyncpg raises
  ``OverflowError`` past 64 bits, PostgreSQL a range error past 32).

Ids a handler reads from a body (``leader_id``, ``office_id``), the path or the
query string go through :func:`id_value` or :func:`parse_id`: 1..``MAX_ID``.
Query text that reaches the database and the login form go through
:func:`text_problem`, where a line break is refused too. (An uploaded CSV file
is checked by ``ivr.directory_import.decode_file``.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

#: The largest value of a PostgreSQL ``integer`` (ids, versions, counts).
MAX_INT: Final = 2**31 - 1
MIN_INT: Final = -(2**31)
MAX_ID: Final = MAX_INT

#: C0 controls (TAB, CR, LF and NUL among them), DEL, C1 controls (NEL among
#: them) and the Unicode line and paragraph separators.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: Line breaks and tabs (with the spaces around them): a text pasted from a
#: letter carries them.
_LINE_BREAKS: Final = re.compile("[ ]*[\t\n\v\f\r\x85\u2028\u2029][ \t\n\v\f\r\x85\u2028\u2029]*")
#: What ``str.strip()`` leaves but a reader cannot see: a field of only these is empty.
_EDGES: Final = " \t\n\v\f\r\x85\u00a0\u200b\u200c\u200d\u2060\u2028\u2029\ufeff"
#: Bidirectional embeddings, overrides and isolates: they make a text read
#: otherwise than it is stored ("Trojan Source").
_BIDI: Final = re.compile("[\u202a-\u202e\u2066-\u2069]")
#: Surrogate code points: in a ``str`` they are always unpaired (json.loads
#: joins a valid pair into one character), and UTF-8 cannot encode them.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

BIDI: Final = (
    "Berisi karakter pengatur arah teks (U+202A-U+202E, U+2066-U+2069) / "
    "Contains bidirectional control characters (U+202A-U+202E, U+2066-U+2069)"
)
NOT_UTF8: Final = "Teks mengandung karakter yang tidak sah (bukan UTF-8) / Text is not valid UTF-8 (lone surrogate)"
CONTROL: Final = (
    "Harus satu baris tanpa karakter kontrol (baris baru, tab, NUL) / "
    "Must be one line without control characters (line breaks, tabs, NUL)"
)
OUT_OF_RANGE: Final = (
    f"Angka di luar jangkauan ({MIN_INT} sampai {MAX_INT}; nomor telepon ditulis sebagai teks) / "
    f"Number out of range ({MIN_INT} to {MAX_INT}; a phone number goes as text, in quotes)"
)
ID: Final = f"Harus id: bilangan bulat 1-{MAX_ID} / Must be an id: an integer from 1 to {MAX_ID}"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as one line of text, or None."""
    if _SURROGATE.search(value):
        return NOT_UTF8
    if _CONTROL.search(value):
        return CONTROL
    if _BIDI.search(value):
        return BIDI
    return None


def _key_name(key: str) -> str:
    """A key as an error's field name (a key that is itself bad text is escaped)."""
    return key if text_problem(key) is None else ascii(key)[1:-1]


def one_line(value: str) -> str:
    """``value`` with each run of line breaks and tabs (and the spaces around
    them) made one space, and without invisible characters at either end."""
    return _LINE_BREAKS.sub(" ", value).strip(_EDGES)


def clean_document(data: dict[str, Any]) -> dict[str, str]:
    """Make every string of a parsed JSON object one line (in place), and
    return every string (keys included) and integer still bad, by its path
    (``officers[0].name``). Iterative: depth is not a problem."""
    errors: dict[str, str] = {}
    pending: list[tuple[str, dict[str, Any] | list[Any]]] = [("", data)]
    while pending:
        path, node = pending.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in items:
            if isinstance(key, str):
                name = _key_name(key)
                here = f"{path}.{name}" if path else name
                if name != key:
                    errors[here] = NOT_UTF8 if _SURROGATE.search(key) else CONTROL
                    continue
            else:
                here = f"{path}[{key}]"
            if isinstance(value, str):
                value = node[key] = one_line(value)  # type: ignore[index]
                problem = text_problem(value)
                if problem is not None:
                    errors[here] = problem
            elif isinstance(value, bool) or value is None or isinstance(value, float):
                continue
            elif isinstance(value, int):
                if not MIN_INT <= value <= MAX_INT:
                    errors[here] = OUT_OF_RANGE
            else:
                pending.append((here, value))
    return errors


def id_value(body: Mapping[str, Any], key: str, errors: dict[str, str]) -> int | None:
    """``body[key]`` as an id (absent or null: None); a message in ``errors`` otherwise."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        errors[key] = ID
        return None
    return value


def parse_id(raw: str) -> int | None:
    """An id as written in a path or query string ("42"), or None."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_ID)):
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None
