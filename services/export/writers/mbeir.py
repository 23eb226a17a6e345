"""M-BEIR, as UniIR reads it: queries, candidate pool and qrels per task, plus an id map.

    mbeir/query/test/mbeir_<name>_task<k>_test.jsonl
    mbeir/cand_pool/local/mbeir_<name>_task<k>_cand_pool.jsonl
    mbeir/qrels/test/mbeir_<name>_task<k>_test_qrels.txt       5 columns, for UniIR
    mbeir/qrels/test/mbeir_<name>_task<k>_test_qrels.trec.txt  4 columns, for trec_eval
    mbeir/id_map.tsv                              M-BEIR qid/did <-> query/item id

Ids are renumbered ``"N:n"`` (``N`` the options' M-BEIR dataset id). Qrels hold the positives
only, as UniIR writes them; rejected former positives go to ``neg_cand_list``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from services.export.folder import Folder, slug, to_json
from services.export.split import Split, ref_image_path
from services.export.writers.images import relative_image

# M-BEIR's task ids by (query modality, candidate modality), from UniIR's preprocessing utils.
MBEIR_TASKS = {
    ("text", "image"): 0,
    ("text", "text"): 1,
    ("text", "image,text"): 2,
    ("image", "text"): 3,
    ("image", "image"): 4,
    ("image,text", "text"): 6,
    ("image,text", "image"): 7,
    ("image,text", "image,text"): 8,
}


def write_mbeir(folder: Folder, split: Split) -> None:
    n = split.options.mbeir_dataset_id
    name = slug(split.consensus.dataset)
    dids = {it.ext_id: f"{n}:{k}" for k, it in enumerate(split.pool.items, start=1)}
    qids = {q.ext_id: f"{n}:{k}" for k, q in enumerate(split.queries, start=1)}

    candidates = []
    modalities = set()
    for it in split.pool.items:
        image = relative_image(split.pool.item_image[it.ext_id])
        txt = "\n".join(part for part in (it.title, it.text) if part) or None
        modality = ",".join(m for m, present in (("image", image), ("text", txt)) if present) or "text"
        modalities.add(modality)
        candidates.append(
            {
                "did": dids[it.ext_id],
                "txt": txt,
                "img_path": image,
                "modality": modality,
                "src_content": to_json({"id": it.ext_id}),
            }
        )
    has_image = any("image" in m for m in modalities)
    has_text = any("text" in m for m in modalities)
    pool_modality = "image,text" if has_image and has_text else "image" if has_image else "text"

    by_task: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for q in split.queries:
        refs = split.pool.refs.get(q.query_id, [])
        paths = [
            split.pool.item_image[split.pool.item_ext[r.item_id]] if r.item_id else ref_image_path(r)
            for r in refs
        ]
        image = next((p for p in paths if p), None)
        modality = "image,text" if image else "text"
        task = MBEIR_TASKS[(modality, pool_modality)]
        source: dict[str, Any] = {"id": q.ext_id}
        if refs:
            source["ref_items"] = split.ref_items(q)
            source["ref_images"] = [relative_image(ref_image_path(r)) for r in split.ref_images(q)]
        by_task[task].append(
            {
                "qid": qids[q.ext_id],
                "query_txt": q.text,
                "query_img_path": relative_image(image),
                "query_modality": modality,
                "query_src_content": to_json(source),
                "pos_cand_list": [dids[d.ext_id] for d in q.positives],
                "neg_cand_list": [dids[ext] for ext in split.zero(q)],
                "task_id": task,
            }
        )
    for task, queries in sorted(by_task.items()):
        stem = f"mbeir_{name}_task{task}"
        folder.jsonl(f"mbeir/query/test/{stem}_test.jsonl", queries)
        folder.jsonl(f"mbeir/cand_pool/local/{stem}_cand_pool.jsonl", candidates)
        pairs = [(q["qid"], did) for q in queries for did in q["pos_cand_list"]]
        folder.text(
            f"mbeir/qrels/test/{stem}_test_qrels.txt", "".join(f"{a} 0 {b} 1 {task}\n" for a, b in pairs)
        )
        folder.text(
            f"mbeir/qrels/test/{stem}_test_qrels.trec.txt", "".join(f"{a} 0 {b} 1\n" for a, b in pairs)
        )
    rows = [("kind", "mbeir_id", "id")]
    rows += [("query", qids[q.ext_id], q.ext_id) for q in split.queries]
    rows += [("candidate", dids[it.ext_id], it.ext_id) for it in split.pool.items]
    folder.text("mbeir/id_map.tsv", "".join("\t".join(r) + "\n" for r in rows))
