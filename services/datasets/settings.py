"""A dataset's settings, typed, with their defaults and limits in one place.

Stored as JSON on the dataset row (``Dataset.settings``); read back through
:meth:`DatasetSettings.from_stored`, which fills defaults for keys an older dataset lacks, so a
new setting never needs a data migration. Every change goes through :func:`update_settings`, which
validates types and ranges and names what to fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from db.enums import Role
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404
from services.triage.order import order_pending

#: ``queue_order`` values: the order assignments were made in, or the most suspicious queries first.
QUEUE_ORDERS = ("shuffled", "problems_first")


def _setting(
    default: Any,
    help: str,
    *,
    low: int | None = None,
    high: int | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    return field(default=default, metadata={"help": help, "low": low, "high": high, "choices": choices})


@dataclass(frozen=True)
class DatasetSettings:
    """How a dataset is annotated and ranked (every field has a default)."""

    k: int = _setting(100, "candidates per query and ranker shown in the workbench", low=1, high=1000)
    overlap: int = _setting(2, "annotators per query when assigning", low=1, high=10)
    show_scores: bool = _setting(False, "show candidates in rank order with their scores (else shuffled)")
    clip_model: str | None = _setting(None, "open_clip model name that embeds this dataset")
    clip_pretrained: str | None = _setting(None, "open_clip pretrained tag, or a local checkpoint path")
    truth_path: str | None = _setting(None, "planted-truth file of a demo dataset (scored on the dashboard)")
    gold_rate: int = _setting(
        20, "one gold query in every N assignments of an annotator (0: mix in none)", low=0, high=1000
    )
    gold_warn_below: int = _setting(
        70, "warn on the dashboard when an annotator's gold accuracy is below this percent", low=0, high=100
    )
    gold_training: bool = _setting(
        False, "training mode: after a gold query is submitted, show the annotator its gold answer"
    )
    queue_order: str = _setting(
        "shuffled",
        "order of each annotator's pending queries: shuffled (as imported and assigned) or "
        "problems_first (most suspicious first, by the triage computed after ranking)",
        choices=QUEUE_ORDERS,
    )
    show_hints: bool = _setting(
        False,
        "show annotators each query's suspicion score in the workbench (admins and reviewers always see it)",
    )
    modality_rank: int = _setting(
        1,
        "r of the modality-shortcut flag: a query is solvable by one modality when its ranker puts "
        "every labelled positive within the top (positives + r - 1)",
        low=1,
        high=100,
    )

    @classmethod
    def from_stored(cls, raw: dict[str, Any] | None) -> DatasetSettings:
        """The settings stored on a dataset row; keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (raw or {}).items() if k in known})

    def as_stored(self) -> dict[str, Any]:
        """The JSON stored on the dataset row (unset optional settings left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def changed(self, changes: dict[str, Any]) -> DatasetSettings:
        """A copy with ``changes`` applied, each checked.

        Raises:
            ValidationError: an unknown setting, a value of the wrong type, or out of range.
        """
        by_name = {f.name: f for f in fields(self)}
        for key, value in changes.items():
            spec = by_name.get(key)
            if spec is None:
                raise ValidationError(f"unknown setting {key!r}; known: {', '.join(by_name)}")
            _check(spec, value)
        return dataclasses.replace(self, **changes)

    @staticmethod
    def describe() -> list[tuple[str, str, Any]]:
        """(name, what it does, default) for every setting: for help texts."""
        return [(f.name, f.metadata["help"], f.default) for f in fields(DatasetSettings)]

    @classmethod
    def parse(cls, key: str, text: str) -> Any:
        """A value typed as text (the CLI's ``key=value``) converted to the setting's type.

        Raises:
            ValidationError: an unknown setting or text that is not of its type.
        """
        by_name = {f.name: f for f in fields(cls)}
        spec = by_name.get(key)
        if spec is None:
            raise ValidationError(f"unknown setting {key!r}; known: {', '.join(by_name)}")
        kind = _kind(spec)
        text = text.strip()
        if kind is bool:
            if text.lower() not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                raise ValidationError(f"setting {key!r} is true or false, not {text!r}")
            return text.lower() in ("true", "yes", "1", "on")
        if kind is int:
            try:
                return int(text)
            except ValueError as e:
                raise ValidationError(f"setting {key!r} is a whole number, not {text!r}") from e
        return text or None


def _kind(spec: dataclasses.Field) -> type:
    annotation = str(spec.type)
    return bool if annotation == "bool" else int if annotation == "int" else str


def _check(spec: dataclasses.Field, value: Any) -> None:
    kind = _kind(spec)
    optional = "None" in str(spec.type)
    if value is None and optional:
        return
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValidationError(f"setting {spec.name!r} must be {kind.__name__}")
    choices = spec.metadata["choices"]
    if choices is not None and value not in choices:
        raise ValidationError(f"{spec.name} must be one of {', '.join(choices)}, not {value!r}")
    low, high = spec.metadata["low"], spec.metadata["high"]
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValidationError(f"{spec.name} must be between {low} and {high}")


#: Settings that choose the CLIP model; a change to one is checked against open_clip.
MODEL_SETTINGS = ("clip_model", "clip_pretrained")


def check_settings(settings: DatasetSettings, changed: Any = MODEL_SETTINGS) -> None:
    """Check what typing cannot: that a changed model choice names a model and weights that exist.

    Raises:
        ValidationError: an unknown open_clip model, a tag that is not the model's, a missing file.
    """
    if set(changed) & set(MODEL_SETTINGS):
        from services.ranking.models import check_model_choice  # imports open_clip: only when needed

        check_model_choice(settings)


@allow(Role.ADMIN)
def dataset_settings(db: Database, name: str, *, actor: Actor = SYSTEM) -> DatasetSettings:
    """A dataset's settings, defaults filled in."""
    with db.read() as s:
        return DatasetSettings.from_stored(dataset_or_404(s, name).settings)


@allow(Role.ADMIN)
def update_settings(
    db: Database, name: str, changes: dict[str, Any], *, actor: Actor = SYSTEM
) -> DatasetSettings:
    """Change some of a dataset's settings (see :class:`DatasetSettings` for each one's meaning).

    A new ``queue_order`` puts the annotators' pending queries in that order at once.

    Raises:
        ValidationError: an unknown setting, a wrong type or range, or a model choice open_clip
            cannot load (nothing is changed then).
    """
    if set(changes) & set(MODEL_SETTINGS):
        # Checked before the write transaction: importing open_clip takes seconds.
        check_settings(dataset_settings(db, name, actor=actor).changed(changes), changes)
    with db.write() as s:
        dataset = dataset_or_404(s, name)
        before = DatasetSettings.from_stored(dataset.settings)
        updated = before.changed(changes)
        dataset.settings = updated.as_stored()
        if updated.queue_order != before.queue_order:
            order_pending(s, dataset.id, updated.queue_order)
        return updated
