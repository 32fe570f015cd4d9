"""Text-classification rows from a user's ``.csv``/``.tsv``/``.jsonl`` file, read as data.

A user's file is data of any shape: every row must give a string text and a label (a
string or an integer), or the file is refused in one line naming the row and what to fix.
Nothing becomes a class by accident: a missing label is not the class ``"None"``, and a
table is not a class name. Encodings: UTF-8 (with or without a byte-order mark), and
UTF-16/UTF-32 when a byte-order mark says so; anything else is refused with the offset of
the first byte that does not decode.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path
from typing import Any

from zoo.errors import UsageError

MAX_FIELD = 16 << 20           # one CSV field; Python's csv refuses over 128 KiB by default
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def decode(path: Path) -> str:
    """The text of ``path``: UTF-8, or the UTF-16/32 its byte-order mark names."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: cannot be read ({e.strerror or e})") from None
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not {encoding.upper().replace('-SIG', '')} text (byte "
                         f"0x{data[e.start]:02x} at offset {e.start} does not decode); save "
                         "it as UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE > NEW)") from None


def _rows_jsonl(path: Path, text: str):
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except RecursionError:
            raise UsageError(f"{path}:{n}: nested too deeply; a .jsonl file has one flat "
                             "object per line") from None
        except ValueError:
            raise UsageError(f"{path}:{n}: not a JSON object; a .jsonl file has one object "
                             "per line") from None
        if not isinstance(row, dict):
            raise UsageError(f"{path}:{n}: a JSON {type(row).__name__}, not an object; a "
                             ".jsonl file has one object per line")
        yield n, row


def _rows_csv(path: Path, text: str):
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    old = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as e:
            why = str(e).replace(f"({MAX_FIELD})", f"({MAX_FIELD >> 20} MiB)")
            raise UsageError(f"{path}:{reader.line_num}: not valid CSV ({why}); fix that "
                             "row") from None
    finally:
        csv.field_size_limit(old)


def _label(value: Any, where: str, column: str) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UsageError(f"{where}: no '{column}' value; give every row a label (a row "
                         "without one cannot be learned from), or drop the row")
    raise UsageError(f"{where}: '{column}' is {type(value).__name__} {_short(value)}; a "
                     "label is a class name (a string) or an integer")


def _text(value: Any, where: str, column: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        raise UsageError(f"{where}: no '{column}' value; give every row a text")
    raise UsageError(f"{where}: '{column}' is {type(value).__name__} {_short(value)}, not a "
                     "string of text")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_table(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """``(texts, labels)`` of every row of a ``.csv``, ``.tsv`` or ``.jsonl`` file.

    Raises:
        UsageError: unreadable or undecodable file, a malformed row, a row without a text
            or label, or a missing column; one line naming the file and row.
    """
    text = decode(path)
    jsonl = path.suffix.lower() in (".jsonl", ".json")
    rows = _rows_jsonl(path, text) if jsonl else _rows_csv(path, text)
    texts: list[str] = []
    labels: list[str] = []
    columns: list[str] | None = None
    for n, row in rows:
        if columns is None:
            columns = [str(c) for c in row if c is not None]
            for col, opt in ((text_column, "--text-column"), (label_column, "--label-column")):
                if col not in row:
                    raise UsageError(f"{path}: no '{col}' column (columns: "
                                     f"{', '.join(columns)[:200]}); name the right one with "
                                     f"{opt}")
        where = f"{path}:{n}"
        texts.append(_text(row.get(text_column), where, text_column))
        labels.append(_label(row.get(label_column), where, label_column))
    if not texts:
        raise UsageError(f"{path}: has no rows; give a file with a header and data")
    return texts, labels
