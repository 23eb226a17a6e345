"""Admin: import datasets, set their guidelines and settings, browse their items."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from db.enums import Role
from services.core.config import load_settings
from services.core.errors import QrelsError
from services.datasets import catalog as ds
from services.datasets.settings import QUEUE_ORDERS, update_settings
from services.ingest.importer import READERS, import_bundle
from services.ingest.uploads import extract_bundle_zip
from ui.state import database, require_role
from ui.words import QUEUE_ORDERS as QUEUE_ORDER_WORDS

user = require_role(Role.ADMIN)
db = database()
st.title("Datasets")

summaries = ds.list_datasets(db, actor=user)
if summaries:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "dataset": d.name,
                    "format": d.source_format,
                    "items": d.n_items,
                    "queries": d.n_queries,
                    "qrels": d.n_qrels,
                    "items without image": d.n_missing_images,
                    "created": d.created_at.strftime("%Y-%m-%d %H:%M"),
                }
                for d in summaries
            ]
        ),
        hide_index=True,
        width="stretch",
    )

with st.expander("Upload a bundle (.zip, up to 50 MB)", icon=":material/upload_file:"):
    with st.form("upload", clear_on_submit=True):
        upload = st.file_uploader("Bundle zip", type=["zip"], key="upload_file")
        upload_name = st.text_input("Dataset name", key="upload_name")
        upload_replace = st.checkbox("Replace the dataset if it exists", key="upload_replace")
        sent = st.form_submit_button("Upload and import", type="primary", key="upload_go")
    if sent:
        if upload is None:
            st.error("Choose a .zip file first.")
        else:
            try:
                folder = extract_bundle_zip(upload.getvalue(), load_settings().data_dir / "uploads")
                report = import_bundle(db, folder, upload_name, replace=upload_replace, actor=user)
            except QrelsError as e:
                st.error(f"Nothing was imported. {e}")
            else:
                st.success(
                    f"Imported {report.dataset}: {report.n_items:,} items, {report.n_queries:,} queries."
                )
                summaries = ds.list_datasets(db, actor=user)

with st.expander(
    "Import a bundle from a folder on the server", expanded=not summaries, icon=":material/folder_open:"
):
    with st.form("import"):
        path = st.text_input(
            "Bundle folder on the server", placeholder="/srv/bundles/mcmr-test", key="import_path"
        )
        name = st.text_input("Dataset name", key="import_name")
        fmt = st.selectbox("Format", sorted(READERS), index=sorted(READERS).index("native"))
        replace = st.checkbox("Replace the dataset if it exists", key="import_replace")
        go = st.form_submit_button("Import", type="primary", key="import_go")
    if go:
        bar = st.progress(0.0, text="reading the bundle")

        def progress(stage: str, done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"{stage}: {done:,} / {total:,}")

        try:
            report = import_bundle(db, path, name, format=fmt, replace=replace, actor=user, progress=progress)
        except QrelsError as e:
            bar.empty()
            st.error(f"Nothing was imported. {e}")
        else:
            bar.empty()
            st.success(
                f"Imported {report.dataset}: {report.n_items:,} items, {report.n_queries:,} queries, "
                f"{report.n_qrels:,} qrels, {report.n_images:,} images."
            )
            for warning in report.warnings:
                st.warning(warning)
            summaries = ds.list_datasets(db, actor=user)

if not summaries:
    st.stop()

chosen = st.selectbox("Dataset", [d.name for d in summaries], key="datasets_chosen")
summary = next(d for d in summaries if d.name == chosen)
guidelines_tab, settings_tab, browse_tab, danger_tab = st.tabs(
    ["Guidelines", "Settings", "Browse items", "Delete"]
)

with guidelines_tab:
    current = ds.get_guidelines(db, chosen, actor=user)
    text = st.text_area(
        "Annotation guidelines (Markdown), shown to annotators in an expander",
        value=current,
        height=240,
        key=f"guidelines_{chosen}",
    )
    if st.button("Save guidelines", key="save_guidelines"):
        try:
            ds.set_guidelines(db, chosen, text, actor=user)
        except QrelsError as e:
            st.error(str(e))
        else:
            st.success("Guidelines saved.")
    if text.strip():
        st.caption("Preview")
        st.markdown(text)

with settings_tab:
    settings = summary.settings
    with st.form("settings"):
        k = st.number_input("Candidates per query (k)", 1, 1000, settings.k, key="settings_k")
        overlap = st.number_input(
            "Annotators per query (overlap)", 1, 10, settings.overlap, key="settings_overlap"
        )
        show_scores = st.checkbox(
            "Show candidate scores and rankers, in rank order (off: hidden and shuffled per annotator)",
            value=settings.show_scores,
            key="settings_show_scores",
        )
        left, middle, right = st.columns(3)
        queue_order = left.selectbox(
            "Queue order",
            QUEUE_ORDERS,
            index=QUEUE_ORDERS.index(settings.queue_order),
            format_func=lambda v: QUEUE_ORDER_WORDS.get(v, v),
            key="settings_queue_order",
            help="Problems first: each annotator's pending queries in descending suspicion (computed "
            "when ranking finishes); who holds which query and the gold mix stay as they are.",
        )
        show_hints = middle.checkbox(
            "Show annotators each query's suspicion",
            value=settings.show_hints,
            key="settings_show_hints",
            help="Off by default: a score on screen anchors judgment. Admins and reviewers always see it.",
        )
        modality_rank = right.number_input(
            "Modality shortcut: rank r",
            1,
            100,
            settings.modality_rank,
            key="settings_modality_rank",
            help="A query is solvable by one modality when its ranker alone places every labelled "
            "positive with fewer than r unlabelled items above it.",
        )
        if st.form_submit_button("Save settings", key="settings_save"):
            changes = {
                "k": int(k),
                "overlap": int(overlap),
                "show_scores": show_scores,
                "queue_order": queue_order,
                "show_hints": show_hints,
                "modality_rank": int(modality_rank),
            }
            try:
                update_settings(db, chosen, changes, actor=user)
            except QrelsError as e:
                st.error(str(e))
            else:
                st.success("Settings saved.")
                if int(modality_rank) != settings.modality_rank:
                    st.info(
                        "The modality flags use the new r once the dataset is triaged again (Ranking page)."
                    )

with browse_tab:
    per_page = 24
    pages = max(1, -(-summary.n_items // per_page))
    page = st.number_input(f"Page (of {pages:,})", 1, pages, 1, key="browse_page")
    cards = ds.item_cards(db, chosen, limit=per_page, offset=(int(page) - 1) * per_page, actor=user)
    columns = st.columns(6)
    for n, card in enumerate(cards):
        with columns[n % 6]:
            if card.thumb:
                st.image(card.thumb, width="stretch")
            else:
                st.caption(f"no image ({card.image_status})")
            st.text(card.title or card.ext_id)
            st.caption(f"{card.ext_id} · {card.category or '-'}")

with danger_tab:
    st.write(f"Deleting **{chosen}** removes its items, queries, qrels and every judgment made on it.")
    confirm = st.text_input("Type the dataset name to confirm", key="delete_confirm")
    if st.button("Delete dataset", type="primary", disabled=confirm != chosen, key="delete_dataset"):
        try:
            ds.delete_dataset(db, chosen, background=True, actor=user)
        except QrelsError as e:
            st.error(str(e))
        else:
            st.success(f"Deleted {chosen}; its rows are removed in the background.")
            st.rerun()
