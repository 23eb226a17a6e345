"""Property tests of the parsers: random valid records come back as written; random junk is a
BundleError (naming the file and line), never another exception."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.errors import BundleError
from services.formats.beir import read_beir
from services.formats.limits import ZERO_WIDTH
from services.formats.mbeir import read_mbeir
from services.formats.mcmr import read_mcmr
from services.formats.merit import read_merit
from services.formats.qrels import read_trec_qrels
from services.formats.records import ParsedBundle

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The junk test runs for 4 formats x 2 files: fewer examples each keeps the whole module fast.
JUNK_SETTINGS = settings(SETTINGS, max_examples=30)

# Ids: no whitespace or control characters (trec_eval splits on whitespace; ids are stripped).
ids = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=12
).filter(lambda i: not i.startswith("#"))  # a TREC qrels line starting with '#' is a comment
free_text = st.text(max_size=30)
query_text = st.text(min_size=1, max_size=30).filter(lambda t: t.strip(ZERO_WIDTH + " \t\r\n"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def scratch() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="formats-prop-")


def jsonl(rows: list[Any], *, ascii_only: bool = True) -> str:
    return "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in rows)


# --------------------------------------------------------------------------- TREC qrels


@st.composite
def qrels_rows(draw) -> list[tuple[str, str, int]]:
    pairs = draw(st.lists(st.tuples(ids, ids), min_size=1, max_size=20, unique=True))
    return [(q, d, draw(st.integers(-127, 127))) for q, d in pairs]


@SETTINGS
@given(rows=qrels_rows(), sep=st.sampled_from([" ", "\t", "  ", " \t "]))
def test_trec_qrels_round_trip(rows: list[tuple[str, str, int]], sep: str) -> None:
    with scratch() as d:
        path = Path(d) / "qrels"
        path.write_text("".join(sep.join((q, "0", doc, str(rel))) + "\n" for q, doc, rel in rows))
        parsed = read_trec_qrels(path)
    assert [(r.query_ext_id, r.item_ext_id, r.score) for r in parsed] == rows
    assert [r.line for r in parsed] == list(range(1, len(rows) + 1))


@SETTINGS
@given(rows=qrels_rows(), junk=st.text(max_size=40).filter(lambda t: "\n" not in t and "\r" not in t))
def test_trec_qrels_junk_is_a_bundle_error(rows: list[tuple[str, str, int]], junk: str) -> None:
    with scratch() as d:
        path = Path(d) / "qrels"
        path.write_text("".join(f"{q} 0 {doc} {rel}\n" for q, doc, rel in rows) + junk + "\n")
        try:
            read_trec_qrels(path)
        except BundleError as e:
            assert e.file == "qrels" and e.line == len(rows) + 1
        else:  # only a well-formed line (or a blank or comment line) may pass
            fields = junk.split()
            assert not fields or junk.lstrip().startswith("#") or len(fields) == 4


@SETTINGS
@given(rows=qrels_rows(), extra=ids)
def test_trec_qrels_fifth_column_always_refused(rows: list[tuple[str, str, int]], extra: str) -> None:
    q, doc, rel = rows[-1]
    with scratch() as d:
        path = Path(d) / "qrels"
        path.write_text("".join(f"{a} 0 {b} {c}\n" for a, b, c in rows[:-1]) + f"{q} 0 {doc} {rel} {extra}\n")
        with pytest.raises(BundleError, match="expected 4"):
            read_trec_qrels(path)


# --------------------------------------------------------------------------- JSONL readers


@st.composite
def collections(draw) -> dict[str, Any]:
    """A pool of items and queries with positives drawn from the pool."""
    item_ids = draw(st.lists(ids, min_size=1, max_size=8, unique=True))
    items = [{"id": i, "title": draw(free_text), "text": draw(free_text)} for i in item_ids]
    query_ids = draw(st.lists(ids, min_size=1, max_size=6, unique=True))
    queries = [
        {
            "id": q,
            "text": draw(query_text),
            "positives": draw(st.lists(st.sampled_from(item_ids), max_size=3, unique=True)),
        }
        for q in query_ids
    ]
    return {"items": items, "queries": queries, "ascii": draw(st.booleans())}


def write_mcmr(root: Path, c: dict[str, Any]) -> None:
    (root / "candidates.jsonl").write_text(
        jsonl(
            [{"candidate_id": i["id"], "title": i["title"], "description": [i["text"]]} for i in c["items"]],
            ascii_only=c["ascii"],
        ),
        encoding="utf-8",
    )
    (root / "query.jsonl").write_text(
        jsonl(
            [{"qid": q["id"], "query": q["text"], "pos_ids": q["positives"]} for q in c["queries"]],
            ascii_only=c["ascii"],
        ),
        encoding="utf-8",
    )


def write_mbeir(root: Path, c: dict[str, Any]) -> None:
    (root / "mbeir_x_task0_cand_pool.jsonl").write_text(
        jsonl(
            [
                {"did": i["id"], "txt": i["text"] or "-", "img_path": None, "modality": "text"}
                for i in c["items"]
            ],
            ascii_only=c["ascii"],
        ),
        encoding="utf-8",
    )
    (root / "mbeir_x_task0_test.jsonl").write_text(
        jsonl(
            [
                {
                    "qid": q["id"],
                    "query_txt": q["text"],
                    "query_img_path": None,
                    "pos_cand_list": q["positives"],
                }
                for q in c["queries"]
            ],
            ascii_only=c["ascii"],
        ),
        encoding="utf-8",
    )


def write_beir(root: Path, c: dict[str, Any]) -> None:
    (root / "corpus.jsonl").write_text(
        jsonl(
            [{"_id": i["id"], "title": i["title"], "text": i["text"]} for i in c["items"]],
            ascii_only=c["ascii"],
        ),
        encoding="utf-8",
    )
    (root / "queries.jsonl").write_text(
        jsonl([{"_id": q["id"], "text": q["text"]} for q in c["queries"]], ascii_only=c["ascii"]),
        encoding="utf-8",
    )
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q['id']}\t{p}\t1\n" for q in c["queries"] for p in q["positives"]),
        encoding="utf-8",
    )


def write_merit(root: Path, c: dict[str, Any]) -> None:
    (root / "products-test.jsonl").write_text(
        jsonl(
            [{"idx": i["id"], "title": i["title"], "language": "en"} for i in c["items"]],
            ascii_only=c["ascii"],
        ),
        encoding="utf-8",
    )
    (root / "queries-test.json").write_text(
        jsonl(
            [
                {"query instruction": q["text"], "query": {}, "pos_candidate": q["positives"]}
                for q in c["queries"]
            ],
            ascii_only=c["ascii"],
        ),
        encoding="utf-8",
    )


READERS: dict[str, tuple[Callable[[Path, dict[str, Any]], None], Callable[..., ParsedBundle], str, str]] = {
    # format: (writer, reader, items file, queries file)
    "mcmr": (write_mcmr, read_mcmr, "candidates.jsonl", "query.jsonl"),
    "mbeir": (write_mbeir, read_mbeir, "mbeir_x_task0_cand_pool.jsonl", "mbeir_x_task0_test.jsonl"),
    "beir": (write_beir, read_beir, "corpus.jsonl", "queries.jsonl"),
    "merit": (write_merit, read_merit, "products-test.jsonl", "queries-test.json"),
}


def expected_queries(fmt: str, c: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    out = []
    for line, q in enumerate(c["queries"], start=1):
        if fmt == "beir" and not q["positives"]:
            continue  # BEIR keeps only the queries its qrels name
        out.append((str(line) if fmt == "merit" else q["id"], q["text"], q["positives"]))
    return out


@pytest.mark.parametrize("fmt", sorted(READERS))
@SETTINGS
@given(c=collections())
def test_jsonl_readers_round_trip(fmt: str, c: dict[str, Any]) -> None:
    writer, reader, _, _ = READERS[fmt]
    with scratch() as d:
        writer(Path(d), c)
        bundle = reader(Path(d))
    assert [i.ext_id for i in bundle.items] == [i["id"] for i in c["items"]]
    if fmt != "mbeir":
        assert [i.title for i in bundle.items] == [i["title"] for i in c["items"]]
    queries = expected_queries(fmt, c)
    assert [(q.ext_id, q.text) for q in bundle.queries] == [(q, t) for q, t, _ in queries]
    qrels = [(r.query_ext_id, r.item_ext_id, r.score) for r in bundle.qrels]
    assert qrels == [(q, p, 1) for q, _, positives in queries for p in positives]


JUNK_KEYS = sorted(
    {
        *("candidate_id", "title", "description", "features", "images", "qid", "query", "pos_ids"),
        *("did", "txt", "img_path", "src_content", "query_txt", "query_img_path", "query_src_content"),
        *("pos_cand_list", "neg_cand_list", "task_id", "_id", "text", "idx", "image", "class"),
        *("language", "query instruction", "pos_candidate", "hard_negative"),
    }
)
junk_lines = st.one_of(
    st.text(max_size=30).filter(lambda t: t.strip() and "\n" not in t and "\r" not in t),
    json_values.map(json.dumps),
    # Records with the formats' own keys and values of any type.
    st.dictionaries(st.sampled_from(JUNK_KEYS), json_values, min_size=1, max_size=6).map(json.dumps),
)


@pytest.mark.parametrize("fmt", sorted(READERS))
@pytest.mark.parametrize("which", ["items", "queries"])
@JUNK_SETTINGS
@given(c=collections(), junk=junk_lines, position=st.integers(0, 10))
def test_jsonl_readers_junk_is_a_bundle_error(
    fmt: str, which: str, c: dict[str, Any], junk: str, position: int
) -> None:
    writer, reader, items_file, queries_file = READERS[fmt]
    name = items_file if which == "items" else queries_file
    with scratch() as d:
        writer(Path(d), c)
        path = Path(d) / name
        lines = path.read_text(encoding="utf-8").split("\n")[:-1]  # not splitlines: U+0085 is text
        at = min(position, len(lines))
        lines.insert(at, junk)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            reader(Path(d))
        except BundleError as e:
            assert e.file is not None
            if e.file == name and e.line is not None and "duplicate" not in e.detail:
                assert e.line == at + 1  # only the junk line can be wrong (or a record it duplicates)
        else:  # a junk line may happen to be a valid record, never plain text or a non-object
            assert isinstance(json.loads(junk), dict)
