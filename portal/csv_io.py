"""Read uploaded CSV files of labeled texts into plain rows, and write rows back out.

Imports are all or nothing: `parse_csv` returns every row or raises `CsvImportError`
listing what is wrong. No database access here; the caller stores the rows.
"""

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from portal.ids import ID_HELP, is_valid_id

# Spreadsheets run cells starting with these as formulas ("CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_HEADER = ("inputid", "input", "concepts", "metadata", "negative_concepts")
DELIMITERS = (",", ";", "\t")
MAX_EXTERNAL_ID_LENGTH = 200
# Metadata is a flat record in practice; deeper JSON is refused before it is read, so a
# hostile file can't make the parser recurse.
MAX_METADATA_DEPTH = 20
# Distinct concept IDs one upload may name: more is a mistake (a text column taken for
# labels, say), and the upload stops there, before its rows fill the memory.
MAX_UPLOAD_CONCEPTS = 1000
NUL = "\x00"
# Room for the upload form's other fields and the multipart boundaries around the file.
UPLOAD_OVERHEAD = 64 * 1024

# The header names of each accepted format: the SDK's, the portal's, plain. The first name
# given for "text" identifies the format; a format may offer several names for a column.
FORMATS: tuple[dict[str, tuple[str, ...]], ...] = (
    {
        "text": ("input",),
        "external_id": ("inputid",),
        "concepts": ("concepts",),
        "negative_concepts": ("negative_concepts",),
        "metadata": ("metadata",),
    },
    {
        "text": ("input.data.text.raw",),
        "external_id": ("input.id",),
        "metadata": ("input.data.metadata",),
    },
    {"text": ("text",), "concepts": ("label", "labels", "concept", "concepts")},
)
JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
BRACKET_RE = re.compile(r"[][{}]")
LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
PAIR_RE = re.compile(r"input\.data\.concepts\[(\d+)\]\.(id|value)")
CONCEPT_VALUES = {"1": True, "true": True, "0": False, "false": False}


@dataclass(frozen=True, slots=True)
class ExportRow:
    external_id: str
    text: str
    concepts: tuple[str, ...]
    negative_concepts: tuple[str, ...]
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ParsedRow(ExportRow):
    """A row read from a file; `row` is its number as a spreadsheet shows it (header = 1)."""

    row: int


@dataclass(frozen=True, slots=True)
class RowError:
    row: int | None  # None when the problem is not in one row
    message: str

    def __str__(self) -> str:
        return self.message if self.row is None else f"row {self.row}: {self.message}"


class CsvImportError(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors


class _RowProblem(Exception):
    """One thing wrong with one row; parse_csv turns it into a RowError."""


@dataclass
class _Columns:
    """Where each kind of cell is, as indexes into a row."""

    width: int
    text: int
    external_id: int | None = None
    concepts: int | None = None
    negative_concepts: int | None = None
    metadata: int | None = None
    # (ID column, value column or None when every ID is positive), in concept index order.
    pairs: list[tuple[int, int | None]] = field(default_factory=list)


def parse_csv(
    data: bytes,
    *,
    max_text_length: int = 100_000,
    max_errors: int = 20,
    label_map: dict[str, str] | None = None,
) -> list[ParsedRow]:
    """The file's rows, or CsvImportError with the rows at fault. `label_map` renames
    the file's concept labels (e.g. ``{"ham": "not-spam"}``) before they are checked."""
    # A text over the limit gets the limit's message, not the csv module's cell limit's.
    csv.field_size_limit(max(csv.field_size_limit(), 2 * max_text_length))
    text = _decode(data)
    records = _records(text)
    header = next(records, None)
    if header is None:
        raise CsvImportError([RowError(None, "the file is empty")])
    columns = _read_header(header[1])
    rows: list[ParsedRow] = []
    errors: list[RowError] = []
    first_row_of_id: dict[str, int] = {}
    concepts: set[str] = set()
    try:
        for row, cells in records:
            if not any(cell.strip() for cell in cells):
                continue
            try:
                parsed = _parse_row(row, cells, columns, max_text_length, label_map or {})
                _check_id_is_new(parsed, first_row_of_id)
                concepts.update(parsed.concepts, parsed.negative_concepts)
                if len(concepts) > MAX_UPLOAD_CONCEPTS:
                    errors.append(RowError(row, too_many_concepts()))
                    break
                rows.append(parsed)
            except _RowProblem as exc:
                errors.append(RowError(row, str(exc)))
                if len(errors) >= max_errors:
                    break
    except CsvImportError as exc:  # the file is malformed from here on
        errors.extend(exc.errors)
    if errors:
        raise CsvImportError(errors[:max_errors])
    if not rows:
        raise CsvImportError([RowError(None, "the file has no rows")])
    return rows


def upload_too_large(content_length: str | None, limit: int) -> bool:
    """Whether a request announces a body bigger than a `limit`-byte file and its form,
    so that it can be refused before a byte of it is read."""
    try:
        return int(content_length or 0) > limit + UPLOAD_OVERHEAD
    except ValueError:
        return False


def too_many_concepts() -> str:
    return (
        f"the upload names more than {MAX_UPLOAD_CONCEPTS:,} different concepts; "
        "is the concepts column really holding concept IDs?"
    )


def _check_id_is_new(parsed: ParsedRow, first_row_of_id: dict[str, int]) -> None:
    if parsed.external_id:
        first = first_row_of_id.setdefault(parsed.external_id, parsed.row)
        if first != parsed.row:
            raise _RowProblem(
                f"input ID {parsed.external_id!r} appears twice: rows {first} and {parsed.row}"
            )


def _decode(data: bytes) -> str:
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8"
    try:
        # Not "utf-8-sig": its error offsets would not count the BOM.
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        where = f"at byte {exc.start}"
        row = _row_at_end(data[: exc.start].decode(encoding))
        if row is not None:
            where += f" (row {row})"
        name = encoding.upper()
        message = f"the file is not valid {name} {where}; save the file as UTF-8"
        raise CsvImportError([RowError(None, message)]) from None


def _row_at_end(text: str) -> int | None:
    """The spreadsheet row of the character just after `text`, if the CSV allows telling."""
    # The sentinel "x" makes a record start at the end even if `text` ends with a newline.
    reader = csv.reader(io.StringIO(text + "x", newline=""), delimiter=_sniff_delimiter(text))
    try:
        return sum(1 for _ in reader)
    except csv.Error:
        return None


def _sniff_delimiter(text: str) -> str:
    """The delimiter the header line holds most of, outside quotes; comma on a tie."""
    header = re.match(r"[^\r\n]*", text).group()
    header = re.sub(r'"[^"]*"', "", header)
    return max(DELIMITERS, key=header.count)


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, cells); raise CsvImportError where the CSV syntax breaks."""
    reader = csv.reader(_lines(text), delimiter=_sniff_delimiter(text), strict=True)
    row = 0
    try:
        for row, cells in enumerate(reader, start=1):
            yield row, cells
    except csv.Error as exc:
        # csv.Error messages are terse; the failing record starts on the row after the last.
        raise CsvImportError([RowError(row + 1, _explain_csv_error(str(exc)))]) from None


def _lines(text: str) -> Iterator[str]:
    """The lines of `text` with their endings, as a file opened with newline="" gives
    them, one at a time: io.StringIO would hold a 4-bytes-a-character copy of it all."""
    for match in LINE_RE.finditer(text):
        yield match[0]


def cells_by_row(data: bytes) -> tuple[list[str], dict[int, list[str]]]:
    """The header's cells and every row's cells by row number (as `ParsedRow.row`), as
    the file has them: for outputs that keep a file's own columns. The file must have
    passed `parse_csv`."""
    records = _records(_decode(data))
    _, header = next(records)
    return header, dict(records)


def _explain_csv_error(message: str) -> str:
    if "unexpected end of data" in message:
        return "unterminated quote: a quoted cell starts in this row and never ends"
    if "expected after" in message:
        return 'text after a closing quote; inside a quoted cell, write a quote as ""'
    if "field larger than field limit" in message:
        limit = csv.field_size_limit()
        return f"a cell is longer than {limit:,} characters; is a closing quote missing?"
    return f"the file is not valid CSV here ({message})"


def _read_header(cells: list[str]) -> _Columns:
    names = [cell.strip().lower() for cell in cells]
    layout = next((f for f in FORMATS if f["text"][0] in names), None)
    if layout is None:
        message = (
            "no text column: the first row must name one as "
            "input (SDK format), input.data.text.raw (portal format) or text"
        )
        raise CsvImportError([RowError(None, message)])
    found: dict[str, int] = {}
    pair_ids: dict[int, int] = {}
    pair_values: dict[int, int] = {}
    for index, name in enumerate(names):
        keys = [key for key, options in layout.items() if name in options]
        pair = PAIR_RE.fullmatch(name)
        if (keys or pair) and names.count(name) > 1:
            raise CsvImportError([RowError(None, f"the column {name!r} appears twice")])
        found.update(dict.fromkeys(keys, index))
        if pair:
            by_concept = pair_ids if pair[2] == "id" else pair_values
            by_concept[int(pair[1])] = index
    pairs = [(pair_ids[i], pair_values.get(i)) for i in sorted(pair_ids)]
    return _Columns(width=len(names), pairs=pairs, **found)


def _parse_row(
    row: int, cells: list[str], columns: _Columns, max_text_length: int, label_map: dict[str, str]
) -> ParsedRow:
    if len(cells) != columns.width:
        message = f"{len(cells)} cells, but the header has {columns.width} columns"
        if len(cells) > columns.width:
            message += " (a text containing the delimiter must be in quotes)"
        raise _RowProblem(message)
    if any(NUL in cell for cell in cells):
        raise _RowProblem("a cell contains a NUL character, which databases cannot store")
    text = _cell(cells, columns.text)
    if not text:
        raise _RowProblem("text is empty")
    if len(text) > max_text_length:
        raise _RowProblem(
            f"text is {len(text):,} characters long; the limit is {max_text_length:,}"
        )
    external_id = _cell(cells, columns.external_id)
    if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise _RowProblem(f"input ID is longer than {MAX_EXTERNAL_ID_LENGTH} characters")
    concepts, negative_concepts = _concepts(cells, columns, label_map)
    return ParsedRow(
        row=row,
        text=text,
        external_id=external_id,
        concepts=concepts,
        negative_concepts=negative_concepts,
        metadata=_metadata(_cell(cells, columns.metadata)),
    )


def _cell(cells: list[str], index: int | None) -> str:
    return "" if index is None else cells[index].strip()


def _concepts(
    cells: list[str], columns: _Columns, label_map: dict[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    positive = _split_ids(_cell(cells, columns.concepts))
    negative = _split_ids(_cell(cells, columns.negative_concepts))
    for id_index, value_index in columns.pairs:
        concept = _cell(cells, id_index)
        if not concept:
            continue
        value = "1" if value_index is None else _cell(cells, value_index).lower()
        if value not in CONCEPT_VALUES:
            raise _RowProblem(f"concept value {value!r} for {concept!r} must be 1 or 0")
        (positive if CONCEPT_VALUES[value] else negative).append(concept)
    positive = [label_map.get(c, c) for c in positive]
    negative = [label_map.get(c, c) for c in negative]
    for concept in positive + negative:
        if not is_valid_id(concept):
            raise _RowProblem(f"concept ID {concept!r} is not valid. {ID_HELP}")
    both = set(positive).intersection(negative)
    if both:
        raise _RowProblem(f"concept {min(both)!r} is both positive and negative")
    return tuple(dict.fromkeys(positive)), tuple(dict.fromkeys(negative))


def _split_ids(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(",") if part.strip()]


def _metadata(cell: str) -> dict[str, Any]:
    if not cell:
        return {}
    try:
        value = load_json(cell, MAX_METADATA_DEPTH)
    except ValueError as exc:
        raise _RowProblem(f"metadata is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _RowProblem('metadata must be a JSON object, like {"source": "web"}')
    return value


def load_json(text: str | bytes, max_depth: int) -> Any:
    """Parse JSON that databases can store; ValueError, with the reason, otherwise.

    Refused: nesting deeper than `max_depth` (checked before parsing, without
    recursion), NaN and Infinity, and NUL characters, which PostgreSQL can't store.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig") if text else ""
    depth = json_depth(text, stop_after=max_depth)
    if depth > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels")
    value = json.loads(text, parse_constant=_reject_constant)
    if "\\u0000" in text and holds_nul(value):
        raise ValueError("it contains a NUL character (\\u0000), which databases cannot store")
    return value


def json_depth(text: str, stop_after: int) -> int:
    """How deeply arrays and objects nest in JSON text, counting no further than
    stop_after + 1. Brackets inside strings don't count."""
    depth = deepest = 0
    for match in BRACKET_RE.finditer(JSON_STRING_RE.sub("", text)):
        if match[0] in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop_after:
                break
        else:
            depth -= 1
    return deepest


def holds_nul(value: Any) -> bool:
    # Recursion is safe here: the depth was checked before parsing.
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(v) for v in value)
    return False


def _reject_constant(name: str) -> None:
    # Python's json reads NaN and Infinity, but they are not JSON and databases refuse them.
    raise ValueError(f"{name} is not allowed")


class _Echo:
    """A file whose write() returns the line, so csv.writer can feed a streaming response."""

    def write(self, line: str) -> str:
        return line


def export_csv(rows: Iterable[ExportRow]) -> Iterator[str]:
    """Lines of a CSV file in the SDK format, plus a negative_concepts column."""
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_HEADER)
    for row in rows:
        cells = (
            row.external_id,
            row.text,
            ",".join(row.concepts),
            _compact_json(row.metadata) if row.metadata else "",
            ",".join(row.negative_concepts),
        )
        yield writer.writerow([_escape_formula(cell) for cell in cells])


def _escape_formula(cell: str) -> str:
    # A leading ' makes spreadsheets show the cell as text instead of running it.
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def export_jsonl(rows: Iterable[ExportRow]) -> Iterator[str]:
    for row in rows:
        record = {
            "id": row.external_id,
            "text": row.text,
            "concepts": list(row.concepts),
            "negative_concepts": list(row.negative_concepts),
            "metadata": row.metadata,
        }
        yield _compact_json(record) + "\n"
