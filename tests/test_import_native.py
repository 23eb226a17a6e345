"""Native bundle import: a good bundle lands whole; each bad input names file, line and problem
and leaves the database exactly as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from db.models import Dataset, Item, Qrel, Query, QueryRef, QueryRevision
from db.session import Database
from services.core.errors import BundleError, DatasetExistsError, PermissionDenied
from services.core.media import MediaStore
from services.ingest.importer import import_bundle
from tests.bundles import make_bundle, png_bytes, write_jsonl, write_qrels


def table_counts(db: Database) -> dict[str, int]:
    with db.read() as s:
        return {
            model.__tablename__: s.scalar(select(func.count()).select_from(model)) or 0
            for model in (Dataset, Item, Query, QueryRef, QueryRevision, Qrel)
        }


def test_good_bundle_imports_everything(db: Database, tmp_path: Path, data_dir: Path) -> None:
    bundle = make_bundle(tmp_path / "b", n_items=6, n_queries=3)
    report = import_bundle(db, bundle, "small")
    assert (report.n_items, report.n_queries, report.n_qrels, report.n_images) == (6, 3, 6, 6)
    with db.read() as s:
        items = s.scalars(select(Item).order_by(Item.ext_id)).all()
        assert [i.ext_id for i in items] == [f"it{n}" for n in range(1, 7)]
        assert all(i.image_status == "ok" and i.image_sha256 for i in items)
        assert items[0].width == 640 and items[1].width == 320
        q1 = s.scalar(select(Query).where(Query.ext_id == "q1"))
        assert q1.source == "generated" and q1.category == "top"
        assert [r.item_id for r in q1.refs] == [items[0].id]
        revisions = s.scalars(select(QueryRevision).where(QueryRevision.query_id == q1.id)).all()
        assert [(r.kind, r.text) for r in revisions] == [("original", "Find item 1")]
    store = MediaStore(data_dir)
    for item in items:
        with Image.open(store.thumb_path(item.image_sha256)) as thumb:
            assert max(thumb.size) == 256
        assert store.original_path(item.image_sha256, item.image_ext).is_file()


def test_existing_name_is_refused_unless_replace(db: Database, tmp_path: Path, data_dir: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    import_bundle(db, bundle, "ds")
    before = table_counts(db)
    with pytest.raises(DatasetExistsError, match="--replace"):
        import_bundle(db, bundle, "ds")
    assert table_counts(db) == before
    import_bundle(db, bundle, "ds", replace=True)
    assert table_counts(db) == before  # replaced, not doubled


def test_only_admins_import(db: Database, tmp_path: Path, data_dir: Path, users) -> None:
    with pytest.raises(PermissionDenied):
        import_bundle(db, make_bundle(tmp_path / "b"), "ds", actor=users["ann1"])


def test_thumbnails_never_upscale_and_images_are_shared(db: Database, tmp_path: Path, data_dir: Path) -> None:
    bundle = make_bundle(tmp_path / "b", n_items=2, n_queries=1)
    (bundle / "images" / "it1.jpg").write_bytes(png_bytes((1, 2, 3), (100, 50)))
    import_bundle(db, bundle, "a")
    import_bundle(db, bundle, "b")  # same images: stored once
    with db.read() as s:
        sha = s.scalar(select(Item.image_sha256).where(Item.ext_id == "it1"))
    with Image.open(MediaStore(data_dir).thumb_path(sha)) as thumb:
        assert thumb.size == (100, 50)


def test_each_image_is_checked_and_thumbnailed_in_one_decode(tmp_path: Path) -> None:
    import io

    from services.core.media import ImageProblem, read_image

    def jpeg(size: tuple[int, int]) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", size, (200, 30, 30)).save(out, format="JPEG", quality=90)
        return out.getvalue()

    small = jpeg((192, 160))
    info, thumb = read_image(small)
    assert (info.ext, info.width, info.height) == ("jpg", 192, 160) and thumb is small  # its own thumbnail
    big = jpeg((1200, 900))
    info, thumb = read_image(big)
    assert (info.width, info.height) == (1200, 900)  # the image's size, not the decoded scale's
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.format == "JPEG" and max(im.size) == 256
    info, thumb = read_image(png_bytes((1, 2, 3), (300, 100)))
    with Image.open(io.BytesIO(thumb)) as im:
        assert info.ext == "png" and im.format == "JPEG" and im.size == (256, 85)
    with pytest.raises(ImageProblem, match="corrupt or truncated"):
        read_image(big[: len(big) // 2])  # decoded at a reduced scale, still read to the end


def _edit_line(path: Path, line: int, change) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    obj = json.loads(lines[line - 1])
    change(obj)
    lines[line - 1] = json.dumps(obj)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _bad_json(b: Path) -> None:
    text = (b / "items.jsonl").read_text().splitlines()
    text[2] = text[2][:-5]  # truncated object
    (b / "items.jsonl").write_text("\n".join(text) + "\n")


def _truncated_file(b: Path) -> None:
    data = (b / "queries.jsonl").read_bytes()
    (b / "queries.jsonl").write_bytes(data[: len(data) - 10])


def _non_utf8(b: Path) -> None:
    lines = (b / "items.jsonl").read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"Item 2", b"Item \xe9\xff2")
    (b / "items.jsonl").write_bytes(b"".join(lines))


def _not_an_object(b: Path) -> None:
    with (b / "queries.jsonl").open("a") as f:
        f.write('["q9", "text"]\n')


def _missing_title(b: Path) -> None:
    _edit_line(b / "items.jsonl", 4, lambda o: o.pop("title"))


def _missing_image_field(b: Path) -> None:
    _edit_line(b / "items.jsonl", 2, lambda o: o.pop("image"))


def _wrong_type(b: Path) -> None:
    _edit_line(b / "items.jsonl", 5, lambda o: o.update(text=["not", "a", "string"]))


def _float_id(b: Path) -> None:
    _edit_line(b / "queries.jsonl", 2, lambda o: o.update(id=2.5))


def _duplicate_item(b: Path) -> None:
    _edit_line(b / "items.jsonl", 3, lambda o: o.update(id="it1"))


def _duplicate_query(b: Path) -> None:
    _edit_line(b / "queries.jsonl", 3, lambda o: o.update(id="q1"))


def _qrel_unknown_query(b: Path) -> None:
    write_qrels(b / "qrels.tsv", [("q1", "it1", 1), ("q77", "it2", 1)])


def _qrel_unknown_item(b: Path) -> None:
    write_qrels(b / "qrels.tsv", [("q1", "it1", 1), ("q2", "it2", 1), ("q2", "nope", 1)])


def _qrel_bad_header(b: Path) -> None:
    (b / "qrels.tsv").write_text("q1\tit1\t1\n")


def _qrel_float_score(b: Path) -> None:
    (b / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tit1\t0.5\n")


def _qrel_columns(b: Path) -> None:
    (b / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1 0 it1 1\n")


def _ref_unknown_item(b: Path) -> None:
    _edit_line(b / "queries.jsonl", 2, lambda o: o.update(ref_items=["it404"]))


def _image_missing(b: Path) -> None:
    (b / "images" / "it3.jpg").unlink()


def _image_is_text(b: Path) -> None:
    (b / "images" / "it3.jpg").write_text("this is not an image")


def _image_truncated(b: Path) -> None:
    data = (b / "images" / "it5.jpg").read_bytes()
    (b / "images" / "it5.jpg").write_bytes(data[: len(data) // 2])


def _image_escapes(b: Path) -> None:
    _edit_line(b / "items.jsonl", 2, lambda o: o.update(image="../../etc/passwd"))


def _image_absolute_outside(b: Path) -> None:
    _edit_line(b / "items.jsonl", 2, lambda o: o.update(image="/etc/hostname"))


def _image_file_url(b: Path) -> None:
    _edit_line(b / "items.jsonl", 2, lambda o: o.update(image="file:///etc/hostname"))


def _ref_image_url(b: Path) -> None:
    _edit_line(b / "queries.jsonl", 1, lambda o: o.update(ref_images=["https://example.com/x.jpg"]))


def _empty_query_text(b: Path) -> None:
    _edit_line(b / "queries.jsonl", 2, lambda o: o.update(text="\u200b\u200b "))


def _huge_query_text(b: Path) -> None:
    _edit_line(b / "queries.jsonl", 2, lambda o: o.update(text="very long " * 2000))


def _missing_file(b: Path) -> None:
    (b / "queries.jsonl").unlink()


def _huge_line(b: Path) -> None:
    _edit_line(b / "items.jsonl", 2, lambda o: o.update(text="x" * (5 * 1024 * 1024)))


def _tab_in_id(b: Path) -> None:
    _edit_line(b / "items.jsonl", 4, lambda o: o.update(id="it\t4"))


def _empty_qrels(b: Path) -> None:
    (b / "qrels.tsv").write_text("")


def _attributes_not_object(b: Path) -> None:
    _edit_line(b / "items.jsonl", 6, lambda o: o.update(attributes=["red"]))


def _bomb(b: Path) -> None:
    # 10,000 x 10,000 pixels of one colour: a tiny PNG that decodes to 100 MP.
    Image.new("1", (10_000, 10_000)).save(b / "images" / "it3.jpg", format="PNG")


BAD_BUNDLES = [
    (_bad_json, "items.jsonl:3", "invalid JSON"),
    (_truncated_file, "queries.jsonl:3", "invalid JSON"),
    (_non_utf8, "items.jsonl:2", "not valid UTF-8"),
    (_not_an_object, "queries.jsonl:4", "expected a JSON object"),
    (_missing_title, "items.jsonl:4", "missing field 'title'"),
    (_missing_image_field, "items.jsonl:2", "missing field 'image'"),
    (_wrong_type, "items.jsonl:5", "'text' must be a string"),
    (_float_id, "queries.jsonl:2", "'id' must be a string or an integer"),
    (_duplicate_item, "items.jsonl:3", "duplicate item id 'it1'"),
    (_duplicate_query, "queries.jsonl:3", "duplicate query id 'q1'"),
    (_qrel_unknown_query, "qrels.tsv:3", "unknown query 'q77'"),
    (_qrel_unknown_item, "qrels.tsv:4", "unknown item 'nope'"),
    (_qrel_bad_header, "qrels.tsv:1", "header"),
    (_qrel_float_score, "qrels.tsv:2", "not an integer"),
    (_qrel_columns, "qrels.tsv:2", "3 tab-separated columns"),
    (_ref_unknown_item, "queries.jsonl:2", "unknown item 'it404'"),
    (_image_missing, "items.jsonl:3", "not found"),
    (_image_is_text, "items.jsonl:3", "not an image"),
    (_image_truncated, "items.jsonl:5", "corrupt or truncated"),
    (_image_escapes, "items.jsonl:2", "escapes the bundle"),
    (_image_absolute_outside, "items.jsonl:2", "outside the bundle"),
    (_image_file_url, "items.jsonl:2", "file: scheme"),
    (_ref_image_url, "queries.jsonl:1", "is a URL"),
    (_empty_query_text, "queries.jsonl:2", "query text is empty"),
    (_huge_query_text, "queries.jsonl:2", "the limit is"),
    (_missing_file, "queries.jsonl", "file not found"),
    (_bomb, "items.jsonl:3", "decompression bomb"),
    (_huge_line, "items.jsonl:2", "byte limit"),
    (_tab_in_id, "items.jsonl:4", "no tabs or newlines"),
    (_empty_qrels, "qrels.tsv", "the file is empty"),
    (_attributes_not_object, "items.jsonl:6", "must be a JSON object"),
]


@pytest.mark.parametrize(
    ("breaker", "where", "what"), BAD_BUNDLES, ids=[b[0].__name__.strip("_") for b in BAD_BUNDLES]
)
def test_bad_bundle_is_refused_and_nothing_written(
    db: Database, tmp_path: Path, data_dir: Path, breaker, where: str, what: str
) -> None:
    import_bundle(db, make_bundle(tmp_path / "first", n_items=3, n_queries=1), "existing")
    before = table_counts(db)
    media_before = sorted(p.name for p in data_dir.rglob("*") if p.is_file())
    bundle = make_bundle(tmp_path / "b")
    breaker(bundle)
    with pytest.raises(BundleError) as excinfo:
        import_bundle(db, bundle, "broken")
    message = str(excinfo.value)
    assert message.startswith(where), message
    assert what in message, message
    assert table_counts(db) == before
    assert sorted(p.name for p in data_dir.rglob("*") if p.is_file()) == media_before


def test_absolute_path_inside_an_allowed_root_is_accepted(
    db: Database, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared_images"
    shared.mkdir()
    (shared / "x.png").write_bytes(png_bytes((9, 9, 9)))
    bundle = make_bundle(tmp_path / "b")
    _edit_line(bundle / "items.jsonl", 2, lambda o: o.update(image=str(shared / "x.png")))
    with pytest.raises(BundleError, match="QRELS_ALLOWED_ROOTS"):
        import_bundle(db, bundle, "ds")
    monkeypatch.setenv("QRELS_ALLOWED_ROOTS", os.pathsep.join(["/nonexistent", str(shared)]))
    assert import_bundle(db, bundle, "ds").n_items == 6


def test_http_image_is_kept_as_a_reference(db: Database, tmp_path: Path, data_dir: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    _edit_line(bundle / "items.jsonl", 2, lambda o: o.update(image="https://example.com/p/2.jpg"))
    report = import_bundle(db, bundle, "ds")
    assert report.n_remote_images == 1
    with db.read() as s:
        item = s.scalar(select(Item).where(Item.ext_id == "it2"))
    assert (item.image_status, item.image_ref, item.image_sha256) == (
        "remote",
        "https://example.com/p/2.jpg",
        None,
    )


def test_query_text_with_markup_is_stored_verbatim(db: Database, tmp_path: Path, data_dir: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    hostile = "<script>alert(1)</script> [click](http://evil) **bold** \u200bzero"
    _edit_line(bundle / "queries.jsonl", 2, lambda o: o.update(text=hostile))
    import_bundle(db, bundle, "ds")
    with db.read() as s:
        assert s.scalar(select(Query.text).where(Query.ext_id == "q2")) == hostile


def test_blank_lines_and_bom_are_tolerated(db: Database, tmp_path: Path, data_dir: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    data = (bundle / "items.jsonl").read_bytes()
    (bundle / "items.jsonl").write_bytes(b"\xef\xbb\xbf" + data.replace(b"\n", b"\n\n", 1))
    assert import_bundle(db, bundle, "ds").n_items == 6


def test_empty_pool_is_refused(db: Database, tmp_path: Path, data_dir: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    write_jsonl(bundle / "items.jsonl", [])
    with pytest.raises(BundleError, match="no items"):
        import_bundle(db, bundle, "ds")
