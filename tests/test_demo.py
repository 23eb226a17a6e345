"""The demo generator: determinism, planted truth, wording, images and errors."""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from demo import images
from demo.captions import visual_caption
from demo.images import render_item_image
from demo.planner import MAX_POSITIVES
from demo.text import item_text
from demo.vocabulary import (
    ATTRIBUTES,
    COLOURS,
    MATERIALS,
    PATTERNS,
    PRODUCT_TYPES,
    SIZES,
    TEXT_ATTRIBUTES,
    VISUAL_ATTRIBUTES,
    sample_item_attributes,
)
from demo.writer import DemoSummary, generate_demo
from services.core.errors import DemoError
from services.datasets.truth import truth_rows

BUNDLE_FILES = ("items.jsonl", "queries.jsonl", "qrels.tsv", "truth.jsonl")

# Colour and pattern words in both languages (English words whole, German stems with endings).
_VISUAL_WORDS = re.compile(
    r"\b(red|blue|green|yellow|black|white|purple|orange|pink|grey|gray|solid|plain|striped|stripes?"
    r"|stripy|dotted|dots?|polka|checked|checkered|check|plaid"
    r"|rot\w*|blau\w*|grün\w*|gelb\w*|schwarz\w*|weiß\w*|weiss\w*|lila|rosa|grau\w*|gestreift\w*"
    r"|streifen|gepunktet\w*|punkte\w*|kariert\w*|karo\w*|einfarbig\w*|uni)\b",
    re.IGNORECASE,
)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _load(out: Path) -> dict[str, Any]:
    items = {obj["id"]: obj for obj in _jsonl(out / "items.jsonl")}
    queries = _jsonl(out / "queries.jsonl")
    truth = truth_rows(out / "truth.jsonl")
    lines = (out / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    qrels: dict[str, set[str]] = defaultdict(set)
    for line in lines[1:]:
        qid, iid, _score = line.split("\t")
        qrels[qid].add(iid)
    return {"items": items, "queries": queries, "truth": truth, "qrels": qrels, "qrels_lines": lines}


def _satisfies(attributes: dict[str, str], attribute: str, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return all(attributes[attribute] == v for v in values)


def _violated(attributes: dict[str, str], conditions: dict[str, Any]) -> list[str]:
    return [a for a, v in conditions.items() if not _satisfies(attributes, a, v)]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoSummary, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo") / "bundle"
    summary = generate_demo(out, n_items=300, n_queries=60, seed=3)
    return summary, _load(out)


# ------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    a = generate_demo(tmp_path / "a", n_items=120, n_queries=25, seed=11)
    b = generate_demo(tmp_path / "b", n_items=120, n_queries=25, seed=11)
    generate_demo(tmp_path / "c", n_items=120, n_queries=25, seed=12)
    assert (a.n_qrels, a.n_false_negatives) == (b.n_qrels, b.n_false_negatives)
    for name in BUNDLE_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    images_a = sorted(p.name for p in (tmp_path / "a" / "images").iterdir())
    assert images_a == sorted(p.name for p in (tmp_path / "b" / "images").iterdir())
    assert len(images_a) == 120
    for name in images_a[::7]:
        assert (tmp_path / "a" / "images" / name).read_bytes() == (
            tmp_path / "b" / "images" / name
        ).read_bytes()
    assert (tmp_path / "a" / "items.jsonl").read_bytes() != (tmp_path / "c" / "items.jsonl").read_bytes()
    assert (tmp_path / "a" / "queries.jsonl").read_bytes() != (tmp_path / "c" / "queries.jsonl").read_bytes()
    assert (tmp_path / "a" / "images" / images_a[0]).read_bytes() != (
        tmp_path / "c" / "images" / images_a[0]
    ).read_bytes()


def test_output_does_not_depend_on_worker_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "_IN_PROCESS_BELOW", 0)  # use the process pool even for a small catalogue
    generate_demo(tmp_path / "one", n_items=150, n_queries=10, seed=4, workers=1)
    generate_demo(tmp_path / "two", n_items=150, n_queries=10, seed=4, workers=2)
    for name in BUNDLE_FILES:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    for path in sorted((tmp_path / "one" / "images").iterdir()):
        assert path.read_bytes() == (tmp_path / "two" / "images" / path.name).read_bytes(), path.name


# ------------------------------------------------------------------------------ planted truth


def test_items_are_well_formed(bundle: tuple[DemoSummary, dict[str, Any]]) -> None:
    summary, data = bundle
    ids = list(data["items"])
    assert ids == sorted(ids) and ids[0] == "it000001" and len(ids) == 300
    for item_id, item in data["items"].items():
        attributes = item["attributes"]
        assert tuple(attributes) == ATTRIBUTES
        assert item["category"] == attributes["type"] in PRODUCT_TYPES
        assert attributes["colour"] in COLOURS and attributes["pattern"] in PATTERNS
        assert attributes["material"] in MATERIALS[attributes["type"]]
        assert attributes["size"] in SIZES[attributes["type"]]
        assert item["language"] in ("en", "de")
        assert item["image"] == f"images/{item_id}.jpg"
        assert (summary.out_dir / item["image"]).is_file()


def test_titles_and_descriptions_never_name_colour_or_pattern(
    bundle: tuple[DemoSummary, dict[str, Any]],
) -> None:
    _, data = bundle
    languages = {item["language"] for item in data["items"].values()}
    assert languages == {"en", "de"}
    for item in data["items"].values():
        for field in ("title", "text"):
            match = _VISUAL_WORDS.search(item[field])
            assert match is None, f"{item['id']} {field} says {match.group(0)!r}: {item[field]!r}"
    rng = random.Random(0)
    for _ in range(500):
        attributes = sample_item_attributes(rng)
        for language in ("en", "de"):
            title, text = item_text(attributes, language, rng)
            assert _VISUAL_WORDS.search(f"{title} {text}") is None, (title, text)


def test_true_positives_match_the_catalogue(bundle: tuple[DemoSummary, dict[str, Any]]) -> None:
    _, data = bundle
    items = data["items"]
    for line in data["truth"]:
        conditions = line["conditions"]
        expected = sorted(
            item_id for item_id, item in items.items() if not _violated(item["attributes"], conditions)
        )
        assert line["true_positives"] == expected, line["query_id"]


def test_planted_errors_are_consistent_with_qrels(bundle: tuple[DemoSummary, dict[str, Any]]) -> None:
    _, data = bundle
    items, qrels = data["items"], data["qrels"]
    assert [q["id"] for q in data["queries"]] == [t["query_id"] for t in data["truth"]]
    for line, query in zip(data["truth"], data["queries"], strict=True):
        qid = line["query_id"]
        labelled = qrels[qid]
        tp, fn, wrong = set(line["true_positives"]), set(line["false_negatives"]), line["wrong_positives"]
        assert line["labelled_positives"] == sorted(labelled), qid
        assert labelled, f"{qid} has no qrels"
        # false negatives: true positives missing from the qrels, and nothing else is missing
        assert fn <= tp and not (fn & labelled) and tp - labelled == fn, qid
        # wrong positives: in the qrels, each violating exactly the recorded condition
        assert set(wrong) == set(line["wrong_positive_violations"]) and wrong == sorted(wrong)
        for item_id in wrong:
            assert item_id in labelled
            violated = _violated(items[item_id]["attributes"], line["conditions"])
            assert violated == [line["wrong_positive_violations"][item_id]], (qid, item_id, violated)
            assert violated != ["type"]
        assert labelled == (tp - fn) | set(wrong), qid
        assert line["conditions"]["type"] == query["category"]
        assert (line["source"], line["group"]) == (query["source"], query["group"])
        if line["bad"] is None:
            assert tp - fn, f"{qid} keeps no labelled true positive"
            assert len(tp) <= MAX_POSITIVES
            assert any(a in line["conditions"] for a in VISUAL_ATTRIBUTES), qid
            assert any(a in line["conditions"] for a in TEXT_ATTRIBUTES), qid
            assert all(isinstance(v, str) for v in line["conditions"].values())
            assert line["target_id"] in tp
        else:
            assert line["bad"] in ("contradictory", "unanswerable")
            assert not tp and not fn and line["group"] is None
            has_list = any(isinstance(v, list) for v in line["conditions"].values())
            assert has_list == (line["bad"] == "contradictory"), qid
            assert 1 <= len(wrong) <= 2 and set(wrong) == labelled


def test_groups_pair_a_generated_and_a_human_query(bundle: tuple[DemoSummary, dict[str, Any]]) -> None:
    summary, data = bundle
    groups: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
    for line, query in zip(data["truth"], data["queries"], strict=True):
        if query["group"] is None:
            assert query["source"] == "generated"
        else:
            groups[query["group"]].append((line, query))
    assert len(groups) == summary.n_groups >= 1
    for group, members in groups.items():
        assert sorted(q["source"] for _, q in members) == ["generated", "human"], group
        (t1, q1), (t2, q2) = members
        assert t1["conditions"] == t2["conditions"] and t1["target_id"] == t2["target_id"]
        assert t1["true_positives"] == t2["true_positives"]
        assert (q1["category"], q1["language"]) == (q2["category"], q2["language"])
        assert q1["text"] != q2["text"]


def test_every_kind_of_error_is_planted(bundle: tuple[DemoSummary, dict[str, Any]]) -> None:
    summary, data = bundle
    truth = data["truth"]
    good = [t for t in truth if t["bad"] is None]
    assert any(t["false_negatives"] for t in good)
    assert any(t["wrong_positives"] for t in good)
    assert {t["bad"] for t in truth} == {None, "contradictory", "unanswerable"}
    assert summary.n_groups >= 1
    assert {q["language"] for q in data["queries"]} == {"en", "de"}


def _select(items: dict[str, Any], conditions: dict[str, Any]) -> list[str]:
    return sorted(i for i, item in items.items() if not _violated(item["attributes"], conditions))


def test_single_modality_queries_are_planted_and_recorded(tmp_path: Path) -> None:
    summary = generate_demo(tmp_path / "b", n_items=300, n_queries=60, seed=3, single_modality_share=0.1)
    data = _load(tmp_path / "b")
    items, truth = data["items"], data["truth"]
    kinds = {t["single_modality"] for t in truth}
    assert {"image", "text"} <= kinds <= {None, "image", "text", "both"}
    assert summary.n_single_modality == sum(t["single_modality"] is not None for t in truth)
    planted = 0
    for line in truth:
        conditions, kind = line["conditions"], line["single_modality"]
        image_part = {a: v for a, v in conditions.items() if a == "type" or a in VISUAL_ATTRIBUTES}
        text_part = {a: v for a, v in conditions.items() if a == "type" or a in TEXT_ATTRIBUTES}
        image_alone = len(image_part) > 1 and _select(items, image_part) == line["true_positives"]
        text_alone = len(text_part) > 1 and _select(items, text_part) == line["true_positives"]
        if line["bad"] is not None:
            assert kind is None
            continue
        assert kind == (
            "both"
            if image_alone and text_alone
            else "image"
            if image_alone
            else "text"
            if text_alone
            else None
        )
        if len(image_part) == len(conditions) or len(text_part) == len(conditions):
            planted += 1  # a planted one: no error planted on it, not in a group
            assert not line["false_negatives"] and not line["wrong_positives"] and line["group"] is None
            assert (
                len(line["true_positives"]) <= MAX_POSITIVES and line["target_id"] in line["true_positives"]
            )
    assert planted >= 4


def test_no_single_modality_query_is_planted_unless_asked(
    bundle: tuple[DemoSummary, dict[str, Any]], tmp_path: Path
) -> None:
    summary, data = bundle
    for line in data["truth"]:  # no query names one modality only; chance ones are still recorded
        if line["bad"] is None:
            conditions = set(line["conditions"])
            assert conditions & set(VISUAL_ATTRIBUTES) and conditions & set(TEXT_ATTRIBUTES)
    assert summary.n_single_modality == sum(t["single_modality"] is not None for t in data["truth"])
    with pytest.raises(DemoError, match="single_modality_share"):
        generate_demo(tmp_path / "never", n_items=60, n_queries=5, single_modality_share=0.9)
    assert not (tmp_path / "never").exists()


def test_summary_matches_files(bundle: tuple[DemoSummary, dict[str, Any]]) -> None:
    summary, data = bundle
    truth = data["truth"]
    assert summary.n_items == len(data["items"]) == 300
    assert summary.n_queries == len(data["queries"]) == 60
    assert summary.n_qrels == len(data["qrels_lines"]) - 1 == sum(len(v) for v in data["qrels"].values())
    assert summary.n_false_negatives == sum(len(t["false_negatives"]) for t in truth)
    assert summary.n_wrong_positives == sum(len(t["wrong_positives"]) for t in truth)
    assert summary.n_bad_queries == sum(t["bad"] is not None for t in truth)
    assert summary.n_groups == len({t["group"] for t in truth if t["group"]})


def test_qrels_is_beir_tsv(bundle: tuple[DemoSummary, dict[str, Any]]) -> None:
    _, data = bundle
    lines = data["qrels_lines"]
    assert lines[0] == "query-id\tcorpus-id\tscore"
    query_ids = {q["id"] for q in data["queries"]}
    for line in lines[1:]:
        qid, iid, score = line.split("\t")
        assert qid in query_ids and iid in data["items"]
        assert score == "1" and int(score) == 1
    assert len(set(lines[1:])) == len(lines) - 1


def test_queries_are_well_formed(bundle: tuple[DemoSummary, dict[str, Any]]) -> None:
    _, data = bundle
    ids = [q["id"] for q in data["queries"]]
    assert ids == sorted(ids) and ids[0] == "q0001" and len(set(ids)) == len(ids)
    for query in data["queries"]:
        assert set(query) == {"id", "text", "category", "language", "source", "group"}
        assert query["text"].strip() and query["language"] in ("en", "de")
        assert query["source"] in ("generated", "human")


# ------------------------------------------------------------------------------ images and wording


def test_bundle_image_decodes_at_requested_size(bundle: tuple[DemoSummary, dict[str, Any]]) -> None:
    summary, data = bundle
    item = next(i for i in data["items"].values() if i["attributes"]["colour"] == "red")
    with Image.open(summary.out_dir / item["image"]) as image:
        assert image.format == "JPEG" and image.size == (192, 192) and image.mode == "RGB"
        r, g, b = ImageStat.Stat(image).mean
    assert r > b and r > g


def test_render_is_deterministic_and_sized() -> None:
    attributes = {"type": "dress", "colour": "green", "pattern": "striped"}
    one = render_item_image(attributes, seed=5, size=96)
    assert one.size == (96, 96) and one.mode == "RGB"
    assert one.tobytes() == render_item_image(attributes, seed=5, size=96).tobytes()
    assert one.tobytes() != render_item_image(attributes, seed=6, size=96).tobytes()
    with pytest.raises(ValueError):
        render_item_image(attributes, seed=5, size=8)


@pytest.mark.parametrize("product_type", PRODUCT_TYPES)
def test_mean_colour_follows_the_colour_attribute(product_type: str) -> None:
    def mean(colour: str, pattern: str = "solid") -> tuple[float, float, float]:
        # Same seed: same shape, place and backdrop; only the colour differs.
        image = render_item_image({"type": product_type, "colour": colour, "pattern": pattern}, seed=1)
        r, g, b = ImageStat.Stat(image).mean
        return r, g, b

    r, g, b = mean("red")
    assert r > g and r > b
    r, g, b = mean("red", "striped")
    assert r > g and r > b
    red, green, blue = mean("red"), mean("green"), mean("blue")
    assert red[0] > green[0] + 10 and red[0] > blue[0] + 10
    assert green[1] > red[1] + 10 and green[1] > blue[1] + 10
    assert blue[2] > red[2] + 10 and blue[2] > green[2] + 10
    assert sum(mean("black")) + 60 < sum(mean("white"))
    yellow = mean("yellow")
    assert yellow[0] > blue[0] + 10 and yellow[1] > blue[1] + 10 and yellow[2] + 10 < blue[2]


def test_patterns_change_the_image() -> None:
    images = [
        render_item_image({"type": "top", "colour": "blue", "pattern": p}, seed=3).tobytes() for p in PATTERNS
    ]
    assert len(set(images)) == len(PATTERNS)


def test_visual_caption() -> None:
    assert visual_caption({"type": "dress", "colour": "red", "pattern": "striped"}) == (
        "a photo of a red striped dress"
    )
    assert visual_caption({"type": "hat", "colour": "orange", "pattern": "solid", "brand": "Brisa"}) == (
        "a photo of an orange solid hat"
    )


def test_item_text_refuses_unknown_language() -> None:
    with pytest.raises(ValueError):
        item_text(sample_item_attributes(random.Random(1)), "fr", random.Random(1))


# ------------------------------------------------------------------------------ errors


def test_non_empty_folder_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(DemoError, match="overwrite"):
        generate_demo(out, n_items=60, n_queries=5)
    assert not (out / "items.jsonl").exists()
    summary = generate_demo(out, n_items=60, n_queries=5, overwrite=True)
    assert summary.n_items == 60
    summary = generate_demo(out, n_items=50, n_queries=4, overwrite=True)
    assert len(list((out / "images").iterdir())) == 50
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_items": 49}, "at least 50"),
        ({"n_items": 60, "n_queries": 0}, "at least 1"),
        ({"n_items": 60, "n_queries": 61}, "at most 60"),
        ({"n_items": 60, "n_queries": 5, "workers": 0}, "workers"),
    ],
)
def test_impossible_requests_raise_demo_error(tmp_path: Path, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(DemoError, match=message):
        generate_demo(tmp_path / "bundle", **kwargs)
    assert not (tmp_path / "bundle").exists()


def test_a_file_is_not_a_bundle_folder(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(DemoError, match="folder"):
        generate_demo(target, n_items=60, n_queries=5, overwrite=True)
