"""BM25 over item texts in English and German."""

from __future__ import annotations

import pytest

from models.lexical import Bm25Index, tokenize

ITEMS = {
    "it1": "Valora Aria silk dress. A silk dress by Valora. Knee-length with a fitted waist.",
    "it2": "Nordwind Vega leather shoe. Cushioned insole for all-day comfort.",
    "it3": "Kestrel Milo Kleid aus Baumwolle. Kleid aus Baumwolle von Kestrel.",
    "it4": "Halden Juno Stuhl aus Eiche. Stabiler Rahmen, einfach aufzubauen.",
    "it5": "Brisa Nova wool hat. Wide brim, packable.",
}


@pytest.fixture(scope="module")
def index() -> Bm25Index:
    return Bm25Index.build(list(ITEMS), list(ITEMS.values()))


def test_tokenize_folds_case_stopwords_and_plurals() -> None:
    assert tokenize("The Dresses") == tokenize("dress")
    assert tokenize("Kleider") == tokenize("Kleid")
    assert tokenize("Stühle") == tokenize("STUHL")
    assert tokenize("shoes") == tokenize("shoe")
    assert tokenize("the and of und der die") == []


def test_search_finds_the_document_with_the_query_words(index: Bm25Index) -> None:
    ids, scores = index.search(
        ["Find a silk dress by Valora", "leather shoes", "Ich suche Kleider aus Baumwolle", "Stühle", "the"],
        k=3,
    )
    assert ids[0][0] == "it1"
    assert ids[1] == ["it2"]  # only items sharing a term come back
    assert ids[2][0] == "it3"
    assert ids[3] == ["it4"]
    assert ids[4] == [] and len(scores[4]) == 0
    assert all(list(s) == sorted(s, reverse=True) for s in scores)


def test_build_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="one text per item"):
        Bm25Index.build(["a"], [])
    with pytest.raises(ValueError, match="repeat"):
        Bm25Index.build(["a", "a"], ["x", "y"])


def test_coordination_puts_items_with_every_word_asked_for_first() -> None:
    shop = Bm25Index.build(
        ["osmund-shoe", "kestrel-shoes", "osmund-hat"],
        [
            "Osmund Aria leather shoe. A leather shoe by Osmund.",
            "Kestrel Vega shoe. A canvas shoe, a comfortable shoe, the shoe for every day.",
            "Osmund Nova wool hat. A wool hat by Osmund. Osmund quality.",
        ],
    )
    plain = shop.scores("Osmund shoe")
    assert plain.shape == (3,) and (plain > 0).all()
    assert shop.scores("Osmund shoe", coordination=0.0).tolist() == plain.tolist()
    coordinated = shop.scores("Osmund shoe", coordination=2.0)
    # The item with both words keeps its score; the ones with one of the two get a quarter of theirs.
    assert coordinated[0] == pytest.approx(plain[0])
    assert coordinated[1:].tolist() == pytest.approx((plain[1:] / 4).tolist())
    assert coordinated.argmax() == 0
    assert shop.scores("nothing known here", coordination=2.0).tolist() == [0.0, 0.0, 0.0]
