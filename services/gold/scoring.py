"""Scoring annotators on gold queries: accuracy per kind of decision, with Wilson intervals.

Every finished annotation of a gold query (the annotator has a verdict on it) is scored against
its gold answer, one chance per decision the answer settles:

- **bad queries rejected**: a gold ``reject`` query; right when the annotator rejected it. Nothing
  else of such a query is scored (its items do not matter once it is rejected);
- **good queries kept**: a gold ``accept`` query; right when they accepted or rewrote it;
- **wrong positives caught**: a labelled positive the answer says is not relevant; right when
  they labelled it not relevant;
- **positives confirmed**: a labelled positive the answer says is relevant; right when they
  labelled it relevant;
- **false negatives added**: an item the answer says is relevant that was not a labelled
  positive; right when they marked it relevant (from the candidates or a search).

An item left unlabelled, or labelled unsure, is a miss. Accuracy is right / chances over all
kinds, with a 95 % Wilson interval; an annotator below the dataset's ``gold_warn_below`` percent
is flagged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import Label, Role, Verdict
from db.models import Judgment, Qrel, QueryVerdict, User
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow
from services.core.lookups import dataset_or_404
from services.datasets.settings import DatasetSettings
from services.gold.answers import GoldAnswer, gold_answers
from services.study.stats import Share, share

WRONG_CAUGHT = "wrong positives caught"
CONFIRMED = "positives confirmed"
ADDED = "false negatives added"
REJECTED = "bad queries rejected"
KEPT = "good queries kept"
KINDS = (WRONG_CAUGHT, CONFIRMED, ADDED, REJECTED, KEPT)
APPROVE = (Verdict.ACCEPT, Verdict.REWRITE)


@dataclass(frozen=True)
class GoldScore:
    """One annotator's record on gold queries."""

    annotator: str
    gold_queries: int  # gold queries they finished
    overall: Share  # right / chances over every kind
    kinds: dict[str, Share]  # by kind (a kind with no chance has n = 0)
    warning: bool  # overall accuracy below the dataset's threshold


@dataclass(frozen=True)
class AnnotatorWork:
    verdict: str
    labels: dict[int, str]  # item -> label


def outcomes(answer: GoldAnswer, positives: set[int], work: AnnotatorWork) -> list[tuple[str, int, bool]]:
    """(kind, item or -1 for the query, right) for each chance a gold answer gives one annotation."""
    if answer.verdict == Verdict.REJECT:
        return [(REJECTED, -1, work.verdict == Verdict.REJECT)]
    out = [(KEPT, -1, work.verdict in APPROVE)]
    for item_id, label in sorted(answer.labels.items()):
        said = work.labels.get(item_id)
        if item_id in positives:
            kind = CONFIRMED if label == Label.RELEVANT else WRONG_CAUGHT
            out.append((kind, item_id, said == label))
        elif label == Label.RELEVANT:
            out.append((ADDED, item_id, said == Label.RELEVANT))
    for item_id in sorted(positives - set(answer.labels)):  # unnamed labelled positives stay relevant
        out.append((CONFIRMED, item_id, work.labels.get(item_id) == Label.RELEVANT))
    return out


def load_gold_work(
    s: Session, dataset_id: int
) -> tuple[dict[int, GoldAnswer], dict[int, set[int]], dict[int, dict[int, AnnotatorWork]]]:
    """Gold answers, labelled positives of gold queries, and every finished annotation of them."""
    answers = gold_answers(s, dataset_id)
    ids = list(answers)
    positives: dict[int, set[int]] = defaultdict(set)
    work: dict[int, dict[int, AnnotatorWork]] = defaultdict(dict)
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        for qid, iid in s.execute(
            select(Qrel.query_id, Qrel.item_id).where(Qrel.query_id.in_(chunk), Qrel.score > 0)
        ):
            positives[qid].add(iid)
        for qid, uid, verdict in s.execute(
            select(QueryVerdict.query_id, QueryVerdict.user_id, QueryVerdict.verdict).where(
                QueryVerdict.query_id.in_(chunk)
            )
        ):
            work[qid][uid] = AnnotatorWork(verdict, {})
        for qid, uid, iid, label in s.execute(
            select(Judgment.query_id, Judgment.user_id, Judgment.item_id, Judgment.label).where(
                Judgment.query_id.in_(chunk)
            )
        ):
            if uid in work[qid]:
                work[qid][uid].labels[iid] = label
    return answers, positives, work


def score_dataset(s: Session, dataset_id: int, threshold_percent: int) -> list[GoldScore]:
    """Every annotator's gold score in one dataset (annotators with no finished gold query left out)."""
    answers, positives, work = load_gold_work(s, dataset_id)
    right: dict[int, dict[str, list[bool]]] = defaultdict(lambda: {k: [] for k in KINDS})
    seen: dict[int, int] = defaultdict(int)
    for qid, by_user in work.items():
        for uid, w in by_user.items():
            seen[uid] += 1
            for kind, _, ok in outcomes(answers[qid], positives.get(qid, set()), w):
                right[uid][kind].append(ok)
    names = dict(s.execute(select(User.id, User.name).where(User.id.in_(list(seen)))).all()) if seen else {}
    scores = []
    for uid in sorted(seen, key=lambda u: names.get(u, str(u))):
        kinds = {k: share(k, sum(v), len(v)) for k, v in right[uid].items()}
        total = sum(sh.count for sh in kinds.values())
        chances = sum(sh.n for sh in kinds.values())
        overall = share("overall", total, chances)
        warning = overall.rate is not None and overall.rate * 100 < threshold_percent
        scores.append(GoldScore(names.get(uid, str(uid)), seen[uid], overall, kinds, warning))
    return scores


@allow(Role.ADMIN)
def gold_scores(db: Database, dataset: str, *, actor: Actor = SYSTEM) -> list[GoldScore]:
    """Per annotator, their accuracy on the gold queries of ``dataset`` (see the module doc)."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        threshold = DatasetSettings.from_stored(ds.settings).gold_warn_below
        return score_dataset(s, ds.id, threshold)
