"""The database: SQLAlchemy models (models.py), enums and column types, sessions, migrations, backups.

Vocabulary, one word per idea across db, services, pages and CLI:

- dataset: one imported benchmark split; its items are the pool, its queries the test split.
- item: one entry of the pool (a product: image + title + text), and only that.
- query: one test query; its text changes only through ``QueryRevision`` rows.
- source: who wrote a query (``generated``, ``human``), and only that.
- qrel: an original relevance label, as imported.
- ranker: a method that ranks the pool (clip_image, clip_text, bm25, hybrid); run: a stored
  ranked list per query (a ranker's, the pooled fusion, or an imported file); candidate: one item
  of a run for a query, whose ``rankers`` keep each ranker's rank and score; ranking: the job
  that embeds the pool and writes the runs.
- annotator: a user who judges queries; assignment: a query in an annotator's queue;
  submission: one submit; work: everything an annotator gives for one query (a draft is unsaved work).
- judgment: an annotator's label for one item; provenance: how the item reached them
  (original, candidate, search, or duplicate: the label given to a copy of an item they judged);
  verdict: an annotator's decision on the query (accept, reject, rewrite).
- adjudication: a reviewer's final label for an item (``ItemAdjudication``) or verdict for a
  query (``QueryAdjudication``).
- decision: the final label or verdict in the cleaned split; its basis: adjudication, consensus
  or original.
- copy: an item whose image is a copy (exact, re-encoded, resized, slightly cropped) of another
  item's; duplicate group: the items of a dataset that are copies of one another, with a
  representative (the one imported first).
- study: a blind rating study; trial: one thing its raters rate; rater: a user taking part;
  system: a run entered in a system-preference study.
"""
