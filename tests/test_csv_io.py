import codecs
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.csv_io import (
    CsvImportError,
    ExportRow,
    ParsedRow,
    RowError,
    export_csv,
    export_jsonl,
    json_depth,
    parse_csv,
)


def parse_error(data: bytes, **kwargs) -> CsvImportError:
    with pytest.raises(CsvImportError) as info:
        parse_csv(data, **kwargs)
    return info.value


def only_error(data: bytes, **kwargs) -> RowError:
    errors = parse_error(data, **kwargs).errors
    assert len(errors) == 1, errors
    return errors[0]


# Bad files


def test_it_rejects_missing_text_column() -> None:
    error = only_error(b"body,label\nhello,a\n")
    assert error.row is None
    assert "no text column" in error.message
    assert "input.data.text.raw" in error.message


def test_it_rejects_unterminated_quote() -> None:
    error = only_error(b'text,label\nfine,a\n"never closed,b\nmore,c\n')
    assert str(error).startswith("row 3: unterminated quote")


def test_it_rejects_text_after_closing_quote() -> None:
    error = only_error(b'text,label\n"quoted" then more,a\n')
    assert str(error).startswith("row 2: ")
    assert "closing quote" in error.message


def test_it_rejects_empty_text() -> None:
    exc = parse_error(b"text,label\nfine,a\n   ,b\n")
    assert str(exc) == "row 3: text is empty"


def test_it_rejects_over_long_text() -> None:
    error = only_error(b"text\n" + b"x" * 11 + b"\n", max_text_length=10)
    assert error == RowError(2, "text is 11 characters long; the limit is 10")


def test_it_rejects_invalid_concept_id() -> None:
    error = only_error(b"text,label\nhello,good\nhello,bad id\n")
    assert str(error).startswith("row 3: ")
    assert "'bad id'" in error.message
    assert "Letters, digits" in error.message


def test_it_rejects_metadata_that_is_not_json() -> None:
    error = only_error(b'input,concepts,metadata\nhello,a,"{not json"\n')
    assert str(error).startswith("row 2: ")
    assert "metadata is not valid JSON" in error.message


def test_it_rejects_metadata_that_is_a_json_list() -> None:
    error = only_error(b'input,concepts,metadata\nhello,a,"[1, 2]"\n')
    assert str(error).startswith("row 2: ")
    assert "must be a JSON object" in error.message


def test_it_rejects_nan_in_metadata() -> None:
    error = only_error(b'input,concepts,metadata\nhello,a,"{""x"": NaN}"\n')
    assert str(error).startswith("row 2: ")
    assert "NaN" in error.message


def test_it_rejects_bad_concept_value() -> None:
    data = b"input.id,input.data.text.raw,input.data.concepts[0].id,input.data.concepts[0].value\n"
    error = only_error(data + b"1,hello,spam,maybe\n")
    assert str(error).startswith("row 2: ")
    assert "'maybe'" in error.message


def test_it_rejects_latin1_bytes() -> None:
    data = "text\nfine\ncaf\u00e9\n".encode("latin-1")
    error = only_error(data)
    assert error.message == "the file is not valid UTF-8 at byte 13 (row 3); save the file as UTF-8"


def test_it_rejects_broken_utf16() -> None:
    data = codecs.BOM_UTF16_LE + "text\nok\n".encode("utf-16-le") + b"\x00"
    assert "not valid UTF-16 at byte 18 (row 3)" in only_error(data).message


def test_it_rejects_duplicate_external_id() -> None:
    data = b"inputid,input,concepts\nx,one,\ny,two,\nx,three,\n"
    assert str(parse_error(data)) == "row 4: input ID 'x' appears twice: rows 2 and 4"


def test_it_rejects_extra_fields() -> None:
    error = only_error(b"text,label\nhello, world,a\n")
    assert str(error).startswith("row 2: ")
    assert "3 cells, but the header has 2 columns" in error.message


def test_it_rejects_missing_fields() -> None:
    error = only_error(b"input,concepts,metadata\nhello,a\n")
    assert str(error).startswith("row 2: ")
    assert "2 cells, but the header has 3 columns" in error.message


def test_it_rejects_file_without_rows() -> None:
    assert only_error(b"text,label\n\n").message == "the file has no rows"


def test_it_rejects_empty_file() -> None:
    assert only_error(b"").message == "the file is empty"


def test_it_rejects_concept_both_positive_and_negative() -> None:
    error = only_error(b"input,concepts,negative_concepts\nhello,a,a\n")
    assert error == RowError(2, "concept 'a' is both positive and negative")


def test_it_rejects_duplicate_columns() -> None:
    assert "'text' appears twice" in only_error(b"text,Text\na,b\n").message


def test_it_reports_errors_in_file_order_up_to_max_errors() -> None:
    data = b"text,label\nok,\n ,a\nok,\n ,a\n ,a\n ,a\n"
    exc = parse_error(data, max_errors=2)
    assert [error.row for error in exc.errors] == [3, 5]


# Accepted formats


def test_it_reads_sdk_format() -> None:
    data = (
        b"inputid,input,concepts,metadata\n"
        b'a1,"Hello, world",spam,"{""source"": ""web""}"\n'
        b'a2,Second text,"ham, eggs ,ham",\n'
    )
    assert parse_csv(data) == [
        ParsedRow(
            row=2,
            text="Hello, world",
            external_id="a1",
            concepts=("spam",),
            negative_concepts=(),
            metadata={"source": "web"},
        ),
        ParsedRow(
            row=3,
            text="Second text",
            external_id="a2",
            concepts=("ham", "eggs"),
            negative_concepts=(),
            metadata={},
        ),
    ]


def test_it_reads_portal_format() -> None:
    data = (
        b"input.id,input.data.text.raw,input.data.concepts[0].id,input.data.concepts[0].value,"
        b"input.data.concepts[1].id,input.data.concepts[1].value,input.data.metadata\n"
        b'7,Some text,spam,1,ham,0,"{""n"": 1}"\n'
        b"8,Other text,spam,false,,,\n"
        b"9,Third text,ham,TRUE,,,\n"
    )
    rows = parse_csv(data)
    assert [(r.external_id, r.concepts, r.negative_concepts, r.metadata) for r in rows] == [
        ("7", ("spam",), ("ham",), {"n": 1}),
        ("8", (), ("spam",), {}),
        ("9", ("ham",), (), {}),
    ]


@pytest.mark.parametrize("label", ["label", "labels", "concept", "concepts"])
def test_it_reads_plain_text_and_label(label: str) -> None:
    data = f' Text , {label.upper()} \nfirst,a\nsecond,"a,b"\nthird,\n'.encode()
    rows = parse_csv(data)
    assert [(r.text, r.concepts) for r in rows] == [
        ("first", ("a",)),
        ("second", ("a", "b")),
        ("third", ()),
    ]


def test_it_reads_text_alone() -> None:
    rows = parse_csv(b"text\n  padded  \n")
    assert rows == [
        ParsedRow(
            row=2, text="padded", external_id="", concepts=(), negative_concepts=(), metadata={}
        )
    ]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_it_sniffs_the_delimiter(delimiter: str) -> None:
    data = f'text{delimiter}label\n"a{delimiter} b, c"{delimiter}x\n'.encode()
    rows = parse_csv(data)
    assert [(r.text, r.concepts) for r in rows] == [(f"a{delimiter} b, c", ("x",))]


def test_it_ignores_delimiters_inside_quoted_header_names() -> None:
    rows = parse_csv(b'"text";"a,b,c"\nhello;x\n')
    assert rows[0].text == "hello"


def test_it_reads_utf8_with_bom() -> None:
    rows = parse_csv(codecs.BOM_UTF8 + "text\ncaf\u00e9\n".encode())
    assert rows[0].text == "caf\u00e9"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_it_reads_utf16_with_bom(encoding: str) -> None:
    bom = codecs.BOM_UTF16_LE if encoding == "utf-16-le" else codecs.BOM_UTF16_BE
    rows = parse_csv(bom + "text,label\r\ncaf\u00e9 \U0001f600,a\r\n".encode(encoding))
    assert [(r.text, r.concepts) for r in rows] == [("caf\u00e9 \U0001f600", ("a",))]


def test_it_reads_multiline_quoted_cells_and_numbers_rows_by_record() -> None:
    data = b'text,label\n"line one\r\nline two\nline three",a\n"",b\n'
    exc = parse_error(data)
    assert exc.errors == [RowError(3, "text is empty")]
    rows = parse_csv(data.replace(b'"",b', b"next,b"))
    assert [(r.row, r.text) for r in rows] == [
        (2, "line one\r\nline two\nline three"),
        (3, "next"),
    ]


def test_it_skips_blank_lines_but_counts_them_as_rows() -> None:
    rows = parse_csv(b"text,label\n\nfirst,a\n , \n,\nsecond,b\n")
    assert [(r.row, r.text) for r in rows] == [(3, "first"), (6, "second")]


# Export


def test_export_csv_escapes_formulas() -> None:
    rows = [ExportRow("=id", "=SUM(A1)", (), (), {}), ExportRow("", "-2", (), (), {})]
    lines = list(export_csv(rows))
    assert lines == [
        "inputid,input,concepts,metadata,negative_concepts\r\n",
        "'=id,'=SUM(A1),,,\r\n",
        ",'-2,,,\r\n",
    ]
    # The quote is kept on import: the parser cannot tell it from a quote someone typed.
    assert parse_csv("".join(lines).encode())[1].text == "'-2"


def test_export_csv_writes_every_column() -> None:
    row = ExportRow("x1", 'Say "hi", then\nleave', ("a", "b"), ("c",), {"k": "v", "n": [1]})
    assert (
        list(export_csv([row]))[1]
        == 'x1,"Say ""hi"", then\nleave","a,b","{""k"":""v"",""n"":[1]}",c\r\n'
    )


def test_export_jsonl_writes_one_object_per_line() -> None:
    rows = [ExportRow("x1", "=caf\u00e9\nbar", ("a",), ("b",), {"k": 1})]
    lines = list(export_jsonl(rows))
    assert len(lines) == 1 and lines[0].endswith("\n")
    assert json.loads(lines[0]) == {
        "id": "x1",
        "text": "=caf\u00e9\nbar",
        "concepts": ["a"],
        "negative_concepts": ["b"],
        "metadata": {"k": 1},
    }


# Properties


def assert_rows_or_import_error(data: bytes) -> None:
    try:
        rows = parse_csv(data)
    except CsvImportError as exc:
        assert exc.errors and all(isinstance(error, RowError) for error in exc.errors)
    else:
        assert rows and all(isinstance(row, ParsedRow) for row in rows)


@given(st.binary(max_size=400))
def test_parse_csv_returns_rows_or_raises_csv_import_error(data: bytes) -> None:
    assert_rows_or_import_error(data)


# Arbitrary bytes rarely get past the header; these reach the row checks.
@given(st.text(alphabet=",;\t\"'\n\r =x{}[]:\u00e9", max_size=60).map(str.encode))
def test_parse_csv_returns_rows_or_raises_on_csv_like_rows(data: bytes) -> None:
    assert_rows_or_import_error(b"input,concepts,metadata\n" + data)


concept_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,15}\Z")
# Stripped, non-empty, and not starting with a character the export escapes.
texts = st.text(min_size=1).filter(
    lambda t: t == t.strip() and t[0] not in "=+-@" and "\x00" not in t
)
# Databases can't store NUL characters, so metadata holding one is refused.
json_texts = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(json_texts, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def export_rows(draw: st.DrawFn) -> ExportRow:
    concepts = draw(st.lists(concept_ids, max_size=4, unique=True))
    negative = [
        c for c in draw(st.lists(concept_ids, max_size=3, unique=True)) if c not in concepts
    ]
    return ExportRow(
        external_id=draw(st.one_of(st.just(""), texts.filter(lambda t: len(t) <= 200))),
        text=draw(texts),
        concepts=tuple(concepts),
        negative_concepts=tuple(negative),
        metadata=draw(st.dictionaries(json_texts, json_values, max_size=3)),
    )


def ids_are_unique(rows: list[ExportRow]) -> bool:
    ids = [row.external_id for row in rows if row.external_id]
    return len(ids) == len(set(ids))


@given(st.lists(export_rows(), min_size=1, max_size=8).filter(ids_are_unique))
def test_export_csv_round_trips_through_parse_csv(rows: list[ExportRow]) -> None:
    parsed = parse_csv("".join(export_csv(rows)).encode())
    assert [p.row for p in parsed] == list(range(2, len(rows) + 2))
    fields = [(p.external_id, p.text, p.concepts, p.negative_concepts, p.metadata) for p in parsed]
    assert [ExportRow(*f) for f in fields] == rows


def test_it_rejects_nul_characters():
    with pytest.raises(CsvImportError, match="row 2: a cell contains a NUL"):
        parse_csv(b"text,label\nbad\x00text,spam\n")


def test_it_rejects_overlong_input_ids():
    with pytest.raises(CsvImportError, match="row 2: input ID is longer than 200"):
        parse_csv(b"inputid,input\n" + b"x" * 201 + b",hello\n")


def test_it_refuses_metadata_nested_too_deeply() -> None:
    deep = '"' + '{""a"":' * 21 + "1" + "}" * 21 + '"'
    with pytest.raises(CsvImportError, match=r"row 2: metadata is not valid JSON \(nested deeper"):
        parse_csv(f"input,metadata\nhello,{deep}\n".encode())


def test_it_stops_at_too_many_concepts() -> None:
    rows = "".join(f"text {n},c{n}\n" for n in range(1500))
    with pytest.raises(CsvImportError, match="row 1002: the upload names more than 1,000"):
        parse_csv(f"text,label\n{rows}".encode())


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[{{", "b": [{"c": "\\\\"}]}', stop_after=20) == 3
    assert json_depth("[" * 10_000, stop_after=20) == 21
