"""Seeded crowd-label data for checking the aggregation models against crowd-kit (stdlib only, so the
throwaway crowd-kit environment that produced the fixtures can import it too).

A worker's kind: ``("accurate", p)`` answers the truth with probability ``p``, else the other
class; ``("stamp", q)`` answers 1 with probability ``q`` whatever the truth (a rubber-stamper);
``("lazy", p, q)`` knows the truth with probability ``p`` and otherwise answers 1 with probability q.
"""

from __future__ import annotations

import random

HAND = [  # (task, worker, label): ten tasks, four workers, one of whom always says 1
    (t, w, label)
    for t, row in enumerate(
        [
            (1, 1, 0, 1),
            (0, 0, 0, 1),
            (1, 1, 1, 1),
            (0, 1, 0, 1),
            (1, 0, 1, 1),
            (0, 0, 1, 1),
            (1, 1, 1, 1),
            (0, 0, 0, 1),
            (1, 1, 0, 1),
            (0, 0, 0, 1),
        ]
    )
    for w, label in zip("abcd", row, strict=True)
]

CROWD = (("accurate", 0.95), ("accurate", 0.8), ("stamp", 0.9), ("lazy", 0.3, 0.5), ("accurate", 0.7))


def simulated(seed: int, n_units: int, workers=CROWD, prevalence: float = 0.3, per_unit: int = 3):
    """(truth by unit, triples): each unit judged by ``per_unit`` workers drawn without replacement."""
    rng = random.Random(seed)
    truth = {u: int(rng.random() < prevalence) for u in range(n_units)}
    triples = []
    for u, t in truth.items():
        for w in sorted(rng.sample(range(len(workers)), per_unit)):
            kind = workers[w]
            if kind[0] == "accurate":
                label = t if rng.random() < kind[1] else 1 - t
            elif kind[0] == "stamp":
                label = int(rng.random() < kind[1])
            else:
                label = t if rng.random() < kind[1] else int(rng.random() < kind[2])
            triples.append((u, w, label))
    return truth, triples
