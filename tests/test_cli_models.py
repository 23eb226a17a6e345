"""The CLI's model choice and dataset settings: `embed`/`rank --model --pretrained`, `datasets set`
with validation, a bundle's own settings (the demo's model), and output fit for a terminal or a script."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import huggingface_hub
import pytest
from typer.testing import CliRunner

from cli.main import app
from db.session import Database
from demo.writer import DATASET_SETTINGS, generate_demo
from models.embedder import DEMO_MODEL
from services.core.errors import BundleError
from services.datasets.settings import DatasetSettings, dataset_settings
from services.ingest.importer import import_bundle
from tests.bundles import make_bundle

runner = CliRunner()


@pytest.fixture
def shop(sqlite_db: Database, tmp_path: Path) -> Database:
    import_bundle(sqlite_db, make_bundle(tmp_path / "b", n_items=6, n_queries=3), "shop")
    return sqlite_db


def test_datasets_set_checks_every_value_and_changes_all_or_nothing(shop: Database) -> None:
    ok = runner.invoke(app, ["datasets", "set", "shop", "k=50", "show_scores=yes"])
    assert ok.exit_code == 0, ok.output
    assert "shop: k=50, show_scores=true" in ok.output
    settings = dataset_settings(shop, "shop")
    assert (settings.k, settings.show_scores) == (50, True)

    for args, message in [
        (["k=0"], "k must be between 1 and 1000"),
        (["nope=1"], "unknown setting 'nope'"),
        (["overlap=two"], "is a whole number, not 'two'"),
        (["k"], "is not key=value"),
        (["k=20", "clip_model=ViT-Nope"], "no config named 'ViT-Nope'"),
        (["clip_model=ViT-B-32", "clip_pretrained=laion9000"], "known tags: "),
        (["clip_pretrained=/no/such/ckpt.pt"], "does not exist"),
    ]:
        bad = runner.invoke(app, ["datasets", "set", "shop", *args])
        assert bad.exit_code == 1 and message in bad.output, (args, bad.output)
    assert dataset_settings(shop, "shop").k == 50  # the k=20 beside a bad model was not applied

    good = runner.invoke(app, ["datasets", "set", "shop", f"clip_model={DEMO_MODEL}", "clip_pretrained=demo"])
    assert good.exit_code == 0, good.output
    assert dataset_settings(shop, "shop").clip_model == DEMO_MODEL
    unset = runner.invoke(app, ["datasets", "set", "shop", "clip_model=", "clip_pretrained="])
    assert unset.exit_code == 0 and "clip_model=(unset)" in unset.output

    listed = runner.invoke(app, ["datasets"])
    assert listed.exit_code == 0 and listed.output.startswith("shop ")
    shown = runner.invoke(app, ["datasets", "show", "shop"])
    assert shown.exit_code == 0 and "show_scores      true" in shown.output and "(changed)" in shown.output


def test_the_demo_bundle_carries_the_demo_model_and_its_truth(sqlite_db: Database, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    generate_demo(out, n_items=50, n_queries=5, workers=1)
    assert json.loads((out / "dataset.json").read_text())["settings"] == DATASET_SETTINGS
    import_bundle(sqlite_db, out, "by-hand")  # as `cli.py import` does, not the setup's load_demo
    settings = dataset_settings(sqlite_db, "by-hand")
    assert (settings.clip_model, settings.clip_pretrained) == (DEMO_MODEL, "demo")
    assert settings.truth_path == str((out / "truth.jsonl").resolve())

    (out / "dataset.json").write_text(json.dumps({"settings": {"k": 0}}))
    with pytest.raises(BundleError, match=r"dataset\.json: k must be between 1 and 1000"):
        import_bundle(sqlite_db, out, "bad")
    (out / "dataset.json").write_text(json.dumps({"settings": {"truth_path": "../../etc/passwd"}}))
    with pytest.raises(BundleError, match="leaves the bundle folder"):
        import_bundle(sqlite_db, out, "bad")
    (out / "dataset.json").write_text("[1, 2]")
    with pytest.raises(BundleError, match=r"dataset\.json: must be a JSON object"):
        import_bundle(sqlite_db, out, "bad")


def test_embed_and_rank_take_the_model_from_the_command_line(
    shop: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dataset names no model: the default ViT-B-32 tag, whose weights are not here. Offline,
    # that fails at once with the message that says what to do.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    default = runner.invoke(app, ["embed", "-d", "shop"])
    assert default.exit_code == 1 and "hub is set offline" in default.output, default.output
    local_only = runner.invoke(app, ["embed", "-d", "shop", "--actors", "2"])
    assert local_only.exit_code == 1 and "are for --engine ray" in local_only.output
    needs_weights = runner.invoke(app, ["embed", "-d", "shop", "--model", "RN50"])
    assert needs_weights.exit_code == 1 and "needs its weights too" in needs_weights.output

    embedded = runner.invoke(app, ["embed", "-d", "shop", "--model", DEMO_MODEL])  # its own weights
    assert embedded.exit_code == 0, embedded.output
    assert f"with {DEMO_MODEL}__" in embedded.output and "(local engine)" in embedded.output
    # One line per stage, queries spelt right; no progress bar outside a terminal.
    assert "embedding images: 6 of 6 in" in embedded.output
    assert "embedding queries: 3 of 3 in" in embedded.output and "querys" not in embedded.output
    ranked = runner.invoke(app, ["rank", "-d", "shop", "--k", "5", "--model", DEMO_MODEL, "--quiet"])
    assert ranked.exit_code == 0, ranked.output
    assert ranked.output.startswith("ranked 3 queries of shop (top 5)") and "\r" not in ranked.output
    assert DatasetSettings.from_stored(None).clip_model is None  # the dataset itself was not changed
    assert dataset_settings(shop, "shop").clip_model is None


def test_bm25s_debug_lines_stay_off_the_console() -> None:
    import models.lexical  # noqa: F401 (imports bm25s, which sets its logger to DEBUG)

    assert not logging.getLogger("bm25s").isEnabledFor(logging.DEBUG)
