"""TREC qrels and runs, read as trec_eval reads them: trec_eval's own test files parse, a 5th qrels
column is refused, and a run is re-ranked by score with ties broken by docno descending."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from services.core.errors import BundleError
from services.formats.qrels import read_trec_qrels
from services.formats.trec import read_trec_run
from tests.test_formats_common import shared


def test_trec_eval_qrels_fixture_parses() -> None:
    path = shared("trec", "qrels-302.test")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    qrels = read_trec_qrels(path)
    assert len(qrels) == len(rows) == 1061
    assert [(q.query_ext_id, q.item_ext_id, q.score) for q in qrels] == [
        (r[0], r[2], int(r[3])) for r in rows
    ]
    assert (qrels[0].query_ext_id, qrels[0].item_ext_id, qrels[0].score) == ("302", "CR93E-10071", 0)
    assert sum(q.score == 1 for q in qrels) == 77
    assert (qrels[5].file, qrels[5].line) == ("qrels-302.test", 6)


def test_trec_eval_results_fixture_is_reranked_by_score() -> None:
    path = shared("trec", "results-302.test")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    run = read_trec_run(path)
    assert list(run) == ["302"]
    ranked = run["302"]
    assert sorted(ranked) == sorted((r[2], float(r[4])) for r in rows)
    assert len(ranked) == 500
    assert ranked[0] == ("FR940126-2-00106", 3.903381)
    for (doc_a, score_a), (doc_b, score_b) in itertools.pairwise(ranked):
        assert score_a > score_b or (score_a == score_b and doc_a > doc_b)
    # The file's own ranks agree: on tied scores the larger docno comes first.
    order = [doc for doc, _ in ranked]
    assert order.index("FBIS3-43197") + 1 == order.index("FBIS3-43143")
    assert order.index("FBIS4-25574") + 1 == order.index("FBIS4-25561")


def write(tmp_path: Path, text: str, name: str = "f.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_fifth_qrels_column_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "q1 0 d1 1\nq1 0 d2 1 7\n", "mbeir_qrels.txt")
    with pytest.raises(BundleError, match=re.escape("mbeir_qrels.txt:2: expected 4")) as info:
        read_trec_qrels(path)
    assert "cut -d' ' -f1-4" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 0 d1\n", "expected 4 whitespace-separated fields"),
        ("q1 0 d1 1.5\n", "rel '1.5' is not an integer"),
        ("q1 0 d1 200\n", "rel 200 is outside -127..127"),
        ("q1 0 d1 1\nq1 0 d1 0\n", "judges document 'd1' twice (first on line 1)"),
    ],
)
def test_bad_qrels_lines(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BundleError, match=re.escape(message)) as info:
        read_trec_qrels(write(tmp_path, text))
    assert info.value.file == "f.txt" and info.value.line is not None


def test_qrels_comments_blank_lines_and_tabs(tmp_path: Path) -> None:
    qrels = read_trec_qrels(write(tmp_path, "# judged by NIST\nq1\t0\td1\t2\n\n  q1 Q0 d2   -1\n"))
    assert [(q.query_ext_id, q.item_ext_id, q.score, q.line) for q in qrels] == [
        ("q1", "d1", 2, 2),
        ("q1", "d2", -1, 4),
    ]


def test_run_ties_rank_and_extra_columns(tmp_path: Path) -> None:
    run = read_trec_run(
        write(
            tmp_path,
            "q2 Q0 a 1 0.5 r\n"
            "q1 Q0 b 9 0.5 r 7\n"  # M-BEIR's 7th column (task id) is ignored
            "q1 Q0 c 1 0.5 r\n"
            "q1 Q0 a 2 0.9 r\n"
            "q1 Q0 d 3 1e-3 r\n",
        )
    )
    assert list(run) == ["q2", "q1"]
    assert run["q1"] == [("a", 0.9), ("c", 0.5), ("b", 0.5), ("d", 0.001)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 Q0 d1 1 0.5\n", "expected 6 whitespace-separated fields"),
        ("q1 Q0 d1 1 high r\n", "score 'high' is not a number"),
        ("q1 Q0 d1 1 nan r\n", "not a finite number"),
        ("q1 Q0 d1 1 0.5 r\nq1 Q0 d1 2 0.4 r\n", "lists document 'd1' twice (first on line 1)"),
    ],
)
def test_bad_run_lines(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BundleError, match=re.escape(message)):
        read_trec_run(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="file not found"):
        read_trec_qrels(tmp_path / "nope")
