"""A study's design: who rates which trial, what each rater sees where, and in what order.

Pure functions of the trials, the raters and the study's seed, so the same arguments give the
same study. Everything random (the raters, the sides, the option order, the queue order, the
order assignments are stored in) is drawn from the seed.

Counterbalancing (query quality): which source is shown as "A" is an equitable 2-colouring of the
bipartite trial-rater graph (Euler circuits of the graph with odd-degree vertices tied to two
dummy vertices, coloured alternately; de Werra's construction). Each trial and each rater sees
each source first equally often, or one more time for one source when their count is odd, and
over the whole study each source is first exactly equally often when the number of assignments
is even. When it is odd (an odd number of trials, each with an odd number of raters) one source is
first exactly once more than the other: no design can do better.

System preference: a trial's options are shuffled once, then rotated for each of its raters (a
Latin rotation), so its raters see its options in different positions.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.core.errors import ValidationError

A, B, TIE = "A", "B", "tie"  # the labels of a query-quality trial's queries, and the third answer


def option_label(number: int) -> str:
    """The label of a system-preference option as raters see it: "Option 1", ..."""
    return f"Option {number}"


def option_number(label: str) -> int:
    """The 1-based display position of an option label."""
    return int(label.split()[-1])


@dataclass(frozen=True)
class Layout:
    """The assignments of a study, one per (trial, rater) pair, in trial order."""

    pairs: list[tuple[int, int]]  # (trial index, rater id)
    mappings: list[dict[str, Any]]  # per pair: label -> source (query quality) or option (preference)
    positions: list[int]  # per pair: its 0-based place in the rater's queue
    insert_order: list[int]  # pair indexes in the order they are stored, so an id tells nothing

    def load(self) -> Counter[int]:
        """Rater id -> trials."""
        return Counter(r for _, r in self.pairs)


def lay_out(
    n_trials: int,
    rater_ids: Sequence[int],
    raters_per_trial: int,
    excluded: Sequence[set[int]],
    seed: int,
    *,
    sources: tuple[str, str] | None = None,
    options: Sequence[Sequence[Any]] = (),
) -> Layout:
    """The whole design of a study.

    Args:
        n_trials: trials, in the order they are served.
        rater_ids: user ids of the raters.
        raters_per_trial: raters per trial.
        excluded: per trial, raters who may not have it (they wrote one of its queries).
        seed: the study seed.
        sources: query quality: the two sources, counterbalanced over "A" and "B".
        options: system preference: per trial, its options (shuffled and rotated per rater).
    """
    chosen = assign_raters(n_trials, rater_ids, raters_per_trial, excluded, seed)
    pairs = [(n, r) for n, picked in enumerate(chosen) for r in picked]
    if sources is not None:
        first, second = sources
        mappings: list[dict[str, Any]] = [
            {A: first, B: second} if a_first else {A: second, B: first}
            for a_first in counterbalance(pairs, seed)
        ]
    else:
        mappings = _rotations(options, chosen, seed)
    return Layout(pairs, mappings, _queue_positions(pairs, rater_ids, seed), _insert_order(len(pairs), seed))


def counterbalance(pairs: Sequence[tuple[Any, Any]], seed: int) -> list[bool]:
    """Which side each (trial, rater) pair gets: True shows the first source as "A".

    An equitable 2-colouring of the bipartite trial-rater (multi)graph: every trial and every rater
    gets each colour equally often, give or take one, and over all pairs the colours are exactly
    equal when ``len(pairs)`` is even (one apart when it is odd).

    Construction (de Werra): join every odd-degree rater to a dummy trial vertex and every
    odd-degree trial to a dummy rater vertex, and the two dummies to each other when both are odd.
    Every degree is now even and the graph still bipartite, so each component has an Euler
    circuit of even length; colouring its edges alternately balances every vertex exactly, and
    dropping the dummy edges unbalances a vertex by at most one. The dummy rater's edges are
    balanced, so the trials' surpluses cancel out unless the dummy-dummy edge exists, which
    happens exactly when the number of pairs is odd.

    Args:
        pairs: (trial, rater) pairs; any hashable ids.
        seed: the study seed; the same pairs and seed give the same sides.
    """
    rng = random.Random(f"{seed}:sides")
    edges: list[tuple[tuple[str, Any], tuple[str, Any]]] = [(("i", i), ("r", r)) for i, r in pairs]
    degree: Counter[tuple[str, Any]] = Counter()
    for u, v in edges:
        degree[u] += 1
        degree[v] += 1
    dummy_trial, dummy_rater = ("i*", None), ("r*", None)
    odd_trials = [v for v in degree if v[0] == "i" and degree[v] % 2]
    odd_raters = [v for v in degree if v[0] == "r" and degree[v] % 2]
    edges += [(dummy_trial, r) for r in odd_raters] + [(i, dummy_rater) for i in odd_trials]
    if len(odd_raters) % 2:  # then len(odd_trials) is odd too
        edges.append((dummy_trial, dummy_rater))

    adjacency: dict[tuple[str, Any], list[tuple[int, tuple[str, Any]]]] = defaultdict(list)
    for n, (u, v) in enumerate(edges):
        adjacency[u].append((n, v))
        adjacency[v].append((n, u))
    vertices = list(adjacency)
    for v in vertices:
        rng.shuffle(adjacency[v])
    rng.shuffle(vertices)
    used = [False] * len(edges)
    cursor = dict.fromkeys(vertices, 0)
    colour = [False] * len(edges)
    for start in vertices:
        # Hierholzer: the edges popped off the stack form one closed walk over the component.
        stack: list[tuple[tuple[str, Any], int | None]] = [(start, None)]
        circuit: list[int] = []
        while stack:
            vertex, via = stack[-1]
            links = adjacency[vertex]
            while cursor[vertex] < len(links) and used[links[cursor[vertex]][0]]:
                cursor[vertex] += 1
            if cursor[vertex] < len(links):
                edge, other = links[cursor[vertex]]
                used[edge] = True
                stack.append((other, edge))
            else:
                stack.pop()
                if via is not None:
                    circuit.append(via)
        first = rng.random() < 0.5
        for n, edge in enumerate(circuit):
            colour[edge] = (n % 2 == 0) == first
    return colour[: len(pairs)]


def assign_raters(
    n_trials: int, rater_ids: Sequence[int], raters_per_trial: int, excluded: Sequence[set[int]], seed: int
) -> list[list[int]]:
    """Pick ``raters_per_trial`` raters for each trial: the least loaded eligible ones, ties at random.

    Args:
        n_trials: trials, in the order they are served.
        rater_ids: user ids of the raters.
        raters_per_trial: raters per trial.
        excluded: per trial, raters who may not have it (they wrote one of its queries).
        seed: the study seed.

    Raises:
        ValidationError: a trial has fewer eligible raters than ``raters_per_trial``.
    """
    rng = random.Random(f"{seed}:raters")
    load = dict.fromkeys(rater_ids, 0)
    chosen: list[list[int]] = []
    for n in range(n_trials):
        eligible = [r for r in rater_ids if r not in excluded[n]]
        if len(eligible) < raters_per_trial:
            raise ValidationError(
                f"a trial has only {len(eligible)} eligible rater(s) (raters never get a query they wrote); "
                f"choose more raters or fewer per trial than {raters_per_trial}"
            )
        ranked = sorted(eligible, key=lambda r: (load[r], rng.random()))
        picked = ranked[:raters_per_trial]
        for r in picked:
            load[r] += 1
        chosen.append(picked)
    return chosen


def _rotations(options: Sequence[Sequence[Any]], chosen: list[list[int]], seed: int) -> list[dict[str, Any]]:
    """Per (trial, rater) pair, option label -> option: shuffled once per trial, rotated per rater."""
    rng = random.Random(f"{seed}:options")
    mappings = []
    for n, picked in enumerate(chosen):
        base = list(options[n])
        rng.shuffle(base)
        # A Latin rotation: the trial's raters see its options in different positions.
        for j in range(len(picked)):
            turn = j % len(base)
            shown = base[turn:] + base[:turn]
            mappings.append({option_label(k): option for k, option in enumerate(shown, start=1)})
    return mappings


def _queue_positions(pairs: Sequence[tuple[int, int]], rater_ids: Sequence[int], seed: int) -> list[int]:
    """Per pair, its place in its rater's queue: each rater's trials in a shuffled order."""
    rng = random.Random(f"{seed}:queue")
    per_rater: dict[int, list[int]] = defaultdict(list)
    for n, (_, r) in enumerate(pairs):
        per_rater[r].append(n)
    position = {}
    for r in rater_ids:
        order = per_rater.get(r, [])
        rng.shuffle(order)
        position.update({n: k for k, n in enumerate(order)})
    return [position[n] for n in range(len(pairs))]


def _insert_order(n_pairs: int, seed: int) -> list[int]:
    """A shuffled order to store the assignments in: an assignment id (a rater sees their own) tells nothing."""
    order = list(range(n_pairs))
    random.Random(f"{seed}:ids").shuffle(order)
    return order
