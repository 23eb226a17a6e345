"""Pool search precision on the demo: keyword queries built from planted item attributes.

Each query names 2-4 attributes of a randomly drawn demo item (product type, brand, material,
colour, pattern, size), in English or German words, in a random order: "solid brass lamp medium",
"Osmund shoe", "Lampe Messing gestreift". The relevant items are those carrying every named
attribute, whatever their language. Reported: precision@10 (relevant items in the top 10 / 10),
and the same out of min(10, relevant items), since many attribute combinations have fewer than 10
items; per query language too.

    python bench/bench_search_precision.py [--items 2000] [--queries 300] [--seed 0] [--label "before"]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_candidate_recall import scratch_workspace  # noqa: E402

# The attributes a query may name besides the product type, and the share of German queries.
QUERY_ATTRIBUTES = ("brand", "material", "colour", "pattern", "size")
GERMAN_QUERIES = 0.3


def build_queries(
    items: Sequence[Mapping[str, object]], n: int, seed: int
) -> list[tuple[str, str, dict[str, str], set[str]]]:
    """``n`` queries ``(text, language, attributes, relevant item ids)`` from planted attributes."""
    from demo.text import keyword_query

    rng = random.Random(seed)
    out = []
    seen: set[str] = set()
    while len(out) < n:
        target = rng.choice(items)
        attributes: dict[str, str] = target["attributes"]  # type: ignore[assignment]
        named = rng.sample(QUERY_ATTRIBUTES, rng.choice((1, 2, 2, 3)))
        if rng.random() < 0.8 or len(named) == 1:
            named = ["type", *named]
        language = "de" if rng.random() < GERMAN_QUERIES else "en"
        text = keyword_query({a: attributes[a] for a in named}, language, rng)
        if text in seen:
            continue
        seen.add(text)
        wanted = {a: attributes[a] for a in named}
        relevant = {
            str(it["id"])
            for it in items
            if all(it["attributes"][a] == v for a, v in wanted.items())  # type: ignore[index]
        }
        out.append((text, language, wanted, relevant))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default="", help="a note for the results row (e.g. before/after)")
    parser.add_argument("--show", type=int, default=0, help="print this many of the worst queries")
    args = parser.parse_args()

    work = scratch_workspace("qrels-bench-search-")
    from sqlalchemy import select

    from bench.results_md import append_row
    from db.models import Item
    from db.session import Database
    from demo.writer import generate_demo
    from services.core.auth import SYSTEM
    from services.core.config import load_settings
    from services.datasets.settings import update_settings
    from services.ingest.importer import import_bundle
    from services.ranking.embed import embed_dataset
    from services.ranking.models import DEMO_SETTINGS
    from services.ranking.search import build_search_index, search_pool

    db = Database(load_settings().db_url)
    generate_demo(work / "demo", n_items=args.items, n_queries=20, seed=args.seed)
    import_bundle(db, work / "demo", "demo", is_demo=True)
    update_settings(db, "demo", dict(DEMO_SETTINGS))
    embed_dataset(db, "demo")
    build_search_index(db, "demo")  # as the ranking job does at its end
    items = [json.loads(line) for line in (work / "demo" / "items.jsonl").read_text("utf-8").splitlines()]
    with db.read() as s:
        ext_of = dict(s.execute(select(Item.id, Item.ext_id)).all())

    queries = build_queries(items, args.queries, args.seed)
    started = time.perf_counter()
    rows = []
    for text, language, wanted, relevant in queries:
        hits = search_pool(db, "demo", actor=SYSTEM, text=text, k=10)
        top = [ext_of[h.item_id] for h in hits]
        found = len(relevant.intersection(top))
        rows.append((text, language, wanted, len(relevant), found / 10, found / min(10, len(relevant))))
    seconds = (time.perf_counter() - started) / len(queries)

    def mean(values: Sequence[float]) -> float:
        return sum(values) / max(len(values), 1)

    p10 = mean([r[4] for r in rows])
    capped = mean([r[5] for r in rows])
    by_language = {
        lang: mean([r[5] for r in rows if r[1] == lang])
        for lang in ("en", "de")
        if any(r[1] == lang for r in rows)
    }
    print(f"{len(rows)} queries; {seconds * 1000:.0f} ms per search")
    print(f"precision@10 {p10:.3f}; of min(10, relevant) {capped:.3f}; by query language {by_language}")
    for text, _, wanted, n_rel, _, score in sorted(rows, key=lambda r: r[5])[: args.show]:
        print(f"  {score:.2f} ({n_rel} relevant) {text!r} {wanted}")
    label = f" ({args.label})" if args.label else ""
    append_row(
        f"pool search precision@10, {len(rows)} keyword queries from planted attributes "
        f"(demo {args.items} items){label}",
        f"P@10 {p10:.3f}; of min(10, relevant) {capped:.3f} (English {by_language.get('en', 0):.3f}, "
        f"German {by_language.get('de', 0):.3f})",
        "python bench/bench_search_precision.py " + " ".join(sys.argv[1:]),
        "cpu",
    )


if __name__ == "__main__":
    main()
