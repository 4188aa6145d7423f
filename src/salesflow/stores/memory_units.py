"""The parts of `salesflow.stores.memory._MemoryUnit` that keep records other than
the CRM ones: definitions and enrollments, interactions, lead scores, running
state and the outbox.

Each mixin holds the `UnitOfWork` methods of one area, as `SequenceUnit`,
`InteractionUnit`, `ScoreUnit`, `StateUnit` and `OutboxUnit` do for
`salesflow.stores.sql.SQLUnit`, and declares the unit attributes it uses:
``_store`` (the `MemoryStore`, whose committed collections it reads) and the
unit's own buffers of the area's writes, which ``_MemoryUnit.__init__`` sets and
``_MemoryUnit.savepoint`` and ``_MemoryUnit.commit`` restore and apply. The
helpers these methods use live here too, ``clone_record`` (the copy of a record handed
in or out) among them; `memory` imports the ones it shares.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from salesflow.activity import Activity
from salesflow.conditions import Condition, all_of, field
from salesflow.definitions import StateDocument, StoredDefinition
from salesflow.due import check_payload
from salesflow.errors import AlreadyExists, NotFound, ValidationError, VersionConflict
from salesflow.interactions import Interaction
from salesflow.outbox import OutboxEntry, check_outbox_claim
from salesflow.scoring_compile import ScoreResult
from salesflow.sequences.enrollment import Enrollment
from salesflow.stores.base import (
    Query,
    check_interaction_lookup,
    check_key,
    check_remove_scores,
    check_scored_activities,
    check_top_scored,
)
from salesflow.values import Record, RecordKind, RecordRef, shallow_copy

if TYPE_CHECKING:
    from salesflow.stores.memory import MemoryStore

__all__ = [
    "MemoryInteractionUnit",
    "MemoryOutboxUnit",
    "MemoryScoreUnit",
    "MemorySequenceUnit",
    "MemoryStateUnit",
    "clone_record",
    "interaction_keys",
]

R = TypeVar("R", bound=Record)

_NEVER = datetime.min.replace(tzinfo=UTC)
"""Stands for a missing due time where undated activities sort among themselves."""


def clone_record(record: R) -> R:
    """A copy of ``record`` to hand in or out of the store (its custom fields too), so
    that no holder changes what the store keeps."""
    twin = shallow_copy(record)
    # The stored values were checked when the record was built; setting the copy
    # through the class would run the custom-field converter again on every read.
    object.__setattr__(twin, "custom", dict(record.custom))
    return twin


def _copy_enrollment(enrollment: Enrollment) -> Enrollment:
    # the mappings are the only mutable parts a holder could change in place
    twin = shallow_copy(enrollment)
    # plain assignments: an enrollment's fields have no converters or validators
    # (the runtime sets them the same way), and `object.__setattr__` costs 3x more
    twin.email_events = dict(enrollment.email_events)
    twin.call_outcomes = dict(enrollment.call_outcomes)
    twin.variants = dict(enrollment.variants)
    return twin


def interaction_keys(interaction: Interaction) -> list[tuple[str, str]]:
    """The ``(field, value)`` keys under which the store finds ``interaction``."""
    keys = []
    if interaction.contact_id is not None:
        keys.append(("contact", interaction.contact_id))
    if interaction.lead_id is not None:
        keys.append(("lead", interaction.lead_id))
    if interaction.account_id is not None:
        keys.append(("account", interaction.account_id))
    return keys


def _outbox_order(entry: OutboxEntry) -> tuple[datetime, str]:
    return (entry.created_at, entry.id)


class MemorySequenceUnit:
    """The definition and enrollment methods of `UnitOfWork`, for `_MemoryUnit` to inherit.

    The inheriting class sets ``_store`` (the `MemoryStore`), ``_definitions`` (the
    definition versions this unit stored, by kind, id and version), ``_enrollments``
    (the enrollments it stored, by id) and ``_enrollments_by_record`` (the ids of
    those it added, by record).
    """

    _store: MemoryStore
    _definitions: dict[tuple[str, str, int], StoredDefinition]
    _enrollments: dict[str, Enrollment]
    _enrollments_by_record: dict[RecordRef, list[str]]

    # --- definitions ----------------------------------------------------------------

    def _versions(self, kind: str, definition_id: str) -> dict[int, StoredDefinition]:
        found = {d.version: d for d in self._store._definitions.get((kind, definition_id), ())}
        for (k, i, version), d in self._definitions.items():
            if (k, i) == (kind, definition_id):
                found[version] = d
        return found

    def add_definition(self, definition: StoredDefinition) -> None:
        if not isinstance(definition, StoredDefinition):
            raise ValidationError(
                f"add_definition() takes a StoredDefinition, not {type(definition).__name__}",
                field="definition",
                value=definition,
            )
        if definition.version in self._versions(definition.kind, definition.id):
            raise AlreadyExists(
                f"{definition.kind} definition", f"{definition.id} version {definition.version}"
            )
        # a private JSON copy: what the SQL stores keep, refused where they refuse it
        document = check_payload(definition.document, field="StoredDefinition.document")
        self._definitions[(definition.kind, definition.id, definition.version)] = attrs.evolve(
            definition, document=document
        )

    def set_definition_state(
        self, kind: str, definition_id: str, version: int, state: str
    ) -> StoredDefinition:
        stored = self._versions(kind, definition_id).get(version)
        if stored is None:
            raise NotFound(f"{kind} definition", f"{definition_id} version {version}")
        changed = attrs.evolve(stored, state=state)
        self._definitions[(kind, definition_id, version)] = changed
        return changed

    def find_definition(
        self, kind: str, definition_id: str, version: int | None = None
    ) -> StoredDefinition | None:
        check_key(definition_id, "definition_id")
        versions = self._versions(kind, definition_id)
        if version is None:
            return versions[max(versions)] if versions else None
        return versions.get(version)

    def definitions(self, kind: str) -> list[StoredDefinition]:
        ids = {i for (k, i) in self._store._definitions if k == kind}
        ids.update(i for (k, i, _) in self._definitions if k == kind)
        latest = (self.find_definition(kind, i) for i in sorted(ids))
        return [d for d in latest if d is not None]

    # --- enrollments ------------------------------------------------------------------

    def _enrollment(self, enrollment_id: str) -> Enrollment | None:
        found = self._enrollments.get(enrollment_id)
        return found if found is not None else self._store._enrollments.get(enrollment_id)

    def add_enrollment(self, enrollment: Enrollment) -> None:
        if not isinstance(enrollment, Enrollment):
            raise ValidationError(
                f"add_enrollment() takes an Enrollment, not {type(enrollment).__name__}",
                field="enrollment",
                value=enrollment,
            )
        if self._enrollment(enrollment.id) is not None:
            raise AlreadyExists("Enrollment", enrollment.id)
        if enrollment.version != 1:
            raise VersionConflict(
                "Enrollment", enrollment.id, expected=enrollment.version - 1, actual=0
            )
        self._enrollments[enrollment.id] = _copy_enrollment(enrollment)
        self._enrollments_by_record.setdefault(enrollment.record, []).append(enrollment.id)

    def update_enrollment(self, enrollment: Enrollment) -> None:
        if not isinstance(enrollment, Enrollment):
            raise ValidationError(
                f"update_enrollment() takes an Enrollment, not {type(enrollment).__name__}",
                field="enrollment",
                value=enrollment,
            )
        stored = self._enrollment(enrollment.id)
        if stored is None:
            raise NotFound("Enrollment", enrollment.id)
        if stored.version != enrollment.version - 1:
            raise VersionConflict(
                "Enrollment", enrollment.id, expected=enrollment.version - 1, actual=stored.version
            )
        self._enrollments[enrollment.id] = _copy_enrollment(enrollment)

    def find_enrollment(self, enrollment_id: str) -> Enrollment | None:
        check_key(enrollment_id, "enrollment_id")
        found = self._enrollment(enrollment_id)
        return _copy_enrollment(found) if found is not None else None

    def enrollments(
        self,
        *,
        record: RecordRef | None = None,
        sequence_id: str | None = None,
        running: bool = False,
    ) -> list[Enrollment]:
        store = self._store
        if record is not None:
            ids = set(store._by_record.get(record, ()))
            ids.update(self._enrollments_by_record.get(record, ()))
        elif sequence_id is not None:
            ids = set(store._by_sequence.get(sequence_id, ()))
            ids.update(self._enrollments)
        else:
            ids = set(store._enrollments)
            ids.update(self._enrollments)
        found = []
        for enrollment_id in sorted(ids):
            e = self._enrollment(enrollment_id)
            if e is None:
                continue
            if record is not None and e.record != record:
                continue
            if sequence_id is not None and e.sequence_id != sequence_id:
                continue
            if running and e.ended:
                continue
            found.append(_copy_enrollment(e))
        return found


class MemoryInteractionUnit:
    """The interaction methods of `UnitOfWork`, for `_MemoryUnit` to inherit.

    The inheriting class sets ``_store`` (the `MemoryStore`) and ``_interactions``
    (the interactions this unit added, by id).
    """

    _store: MemoryStore
    _interactions: dict[str, Interaction]

    # --- interactions -----------------------------------------------------------------

    def add_interaction(self, interaction: Interaction) -> None:
        if not isinstance(interaction, Interaction):
            raise ValidationError(
                f"add_interaction() takes an Interaction, not {type(interaction).__name__}",
                field="interaction",
                value=interaction,
            )
        if self.find_interaction(interaction.id) is not None:
            raise AlreadyExists("Interaction", interaction.id)
        self._interactions[interaction.id] = interaction

    def find_interaction(self, interaction_id: str) -> Interaction | None:
        # interactions are frozen: no copies needed
        found = self._interactions.get(interaction_id)
        return found if found is not None else self._store._interactions.get(interaction_id)

    def interactions(
        self,
        *,
        contact_ids: Sequence[str] = (),
        lead_id: str | None = None,
        account_id: str | None = None,
        since: datetime | None = None,
    ) -> list[Interaction]:
        check_interaction_lookup(contact_ids, lead_id, account_id, since)
        wanted = {("contact", c) for c in contact_ids}
        if lead_id is not None:
            wanted.add(("lead", lead_id))
        if account_id is not None:
            wanted.add(("account", account_id))
        ids: set[str] = set()
        for key in wanted:
            ids.update(self._store._interactions_by.get(key, ()))
        ids.update(
            i.id for i in self._interactions.values() if not wanted.isdisjoint(interaction_keys(i))
        )
        found = [i for i in map(self.find_interaction, ids) if i is not None]
        if since is not None:
            found = [i for i in found if i.occurred_at >= since]
        found.sort(key=lambda i: (i.occurred_at, i.id))
        return found


class MemoryScoreUnit:
    """The lead-score methods of `UnitOfWork`, for `_MemoryUnit` to inherit.

    The inheriting class sets ``_store`` (the `MemoryStore`), ``_scores`` (the scores
    this unit added, in order) and ``_scores_removed`` (the (lead id, model id) pairs
    whose committed scores it removed), and defines ``_matching``.
    """

    _store: MemoryStore
    _scores: list[ScoreResult]
    _scores_removed: set[tuple[str, str]]

    if TYPE_CHECKING:  # `salesflow.stores.memory._MemoryUnit` defines it

        def _matching(self, cls: type[R], query: Query) -> list[Record]: ...

    # --- lead scores ------------------------------------------------------------------

    def add_score(self, score: ScoreResult) -> None:
        if not isinstance(score, ScoreResult):
            raise ValidationError(
                f"add_score() takes a ScoreResult, not {type(score).__name__}",
                field="score",
                value=score,
            )
        self._scores.append(score)  # frozen: no copy needed

    def _history(self, lead_id: str) -> list[ScoreResult]:
        committed: Iterable[ScoreResult] = self._store._scores.get(lead_id, ())
        if self._scores_removed:
            removed = self._scores_removed
            committed = [x for x in committed if (lead_id, x.model_id) not in removed]
        mine = [x for x in self._scores if x.lead_id == lead_id]
        return [*committed, *mine]

    def remove_model_scores(self, model_id: str, limit: int) -> list[str]:
        check_remove_scores(model_id, limit)
        removed = self._scores_removed
        scored = {
            lead_id
            for lead_id, history in self._store._scores.items()
            if (lead_id, model_id) not in removed and any(x.model_id == model_id for x in history)
        }
        scored.update(x.lead_id for x in self._scores if x.model_id == model_id)
        chosen = sorted(scored)[:limit]
        picked = set(chosen)
        removed.update((lead_id, model_id) for lead_id in chosen)
        self._scores = [
            x for x in self._scores if not (x.model_id == model_id and x.lead_id in picked)
        ]
        return chosen

    def scores(self, lead_id: str) -> list[ScoreResult]:
        latest: dict[str, ScoreResult] = {}
        for score in self._history(lead_id):
            held = latest.get(score.model_id)
            if held is None or score.scored_at >= held.scored_at:
                latest[score.model_id] = score
        return [latest[m] for m in sorted(latest)]

    def best_scores(self, lead_ids: Iterable[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for lead_id in lead_ids:
            current = self.scores(lead_id)
            if current:
                found[lead_id] = max(s.points for s in current)
        return found

    def top_scored_leads(
        self, limit: int, after: tuple[str, int] | None = None
    ) -> list[tuple[str, int]]:
        check_top_scored(limit)
        scored = set(self._store._scores) | {x.lead_id for x in self._scores}
        ranked = sorted((-points, lead_id) for lead_id, points in self.best_scores(scored).items())
        if after is not None:
            ranked = [r for r in ranked if r > (-after[1], after[0])]
        return [(lead_id, -rank) for rank, lead_id in ranked[:limit]]

    def scored_lead_activities(
        self, where: Condition, limit: int, offset: int = 0
    ) -> list[tuple[Activity, int]]:
        check_scored_activities(where, limit, offset)
        scope = all_of(where, field("regarding_kind").eq(RecordKind.LEAD.value))
        activities = [
            a for a in self._matching(Activity, Query(where=scope)) if isinstance(a, Activity)
        ]
        best = self.best_scores({a.regarding.id for a in activities})

        def order(a: Activity) -> tuple[int, bool, datetime, str, datetime, str]:
            due = a.due_at
            return (
                -best[a.regarding.id],
                due is None,
                due or _NEVER,
                a.regarding.id,
                a.created_at,
                a.id,
            )

        ranked = sorted((a for a in activities if a.regarding.id in best), key=order)
        return [(clone_record(a), best[a.regarding.id]) for a in ranked[offset : offset + limit]]

    def score_history(self, lead_id: str, model_id: str | None = None) -> list[ScoreResult]:
        history = [
            (x.scored_at, x.model_id, n, x)
            for n, x in enumerate(self._history(lead_id))
            if model_id is None or x.model_id == model_id
        ]
        history.sort(key=lambda item: item[:3])
        return [item[3] for item in history]


class MemoryStateUnit:
    """The running-state methods of `UnitOfWork`, for `_MemoryUnit` to inherit.

    The inheriting class sets ``_store`` (the `MemoryStore`) and ``_states`` (the
    state documents this unit wrote, by kind and key).
    """

    _store: MemoryStore
    _states: dict[tuple[str, str], StateDocument]

    # --- running state -----------------------------------------------------------------

    def get_state(self, kind: str, key: str) -> StateDocument | None:
        found = self._states.get((kind, key))
        state = found if found is not None else self._store._states.get((kind, key))
        # the document is a private JSON copy: hand out another so no holder changes it
        return (
            None if state is None else attrs.evolve(state, document=check_payload(state.document))
        )

    def put_state(
        self,
        kind: str,
        key: str,
        document: dict[str, Any],
        *,
        expected_version: int | None,
        now: datetime,
    ) -> StateDocument:
        stored = self.get_state(kind, key)
        if expected_version is None:
            if stored is not None:
                raise AlreadyExists(f"{kind} state", key)
            version = 1
        else:
            if stored is None:
                raise NotFound(f"{kind} state", key)
            if stored.version != expected_version:
                raise VersionConflict(
                    f"{kind} state", key, expected=expected_version, actual=stored.version
                )
            version = expected_version + 1
        state = StateDocument(
            kind=kind,
            key=key,
            version=version,
            document=check_payload(document, field="StateDocument.document"),
            updated_at=now,
        )
        self._states[(kind, key)] = state
        return attrs.evolve(state, document=check_payload(state.document))

    def states(self, kind: str) -> list[StateDocument]:
        keys = {k for (sk, k) in self._store._states if sk == kind}
        keys.update(k for (sk, k) in self._states if sk == kind)
        found = (self.get_state(kind, k) for k in sorted(keys))
        return [s for s in found if s is not None]


class MemoryOutboxUnit:
    """The outbox methods of `UnitOfWork`, for `_MemoryUnit` to inherit.

    The inheriting class sets ``_store`` (the `MemoryStore`), ``_outbox_added`` (the
    entries this unit put, by id) and ``_outbox_removed`` (the ids of the committed
    entries it removed).
    """

    _store: MemoryStore
    _outbox_added: dict[str, OutboxEntry]
    _outbox_removed: set[str]

    # --- the outbox --------------------------------------------------------------------

    def put_outbox(self, entry: OutboxEntry) -> None:
        if not isinstance(entry, OutboxEntry):
            raise ValidationError(
                f"put_outbox() takes an OutboxEntry, not {type(entry).__name__}",
                field="entry",
                value=entry,
            )
        stored = entry.id in self._store._outbox and entry.id not in self._outbox_removed
        if stored or entry.id in self._outbox_added:
            raise AlreadyExists("outbox entry", entry.id)
        self._outbox_added[entry.id] = entry

    def claim_outbox(self, before: datetime, limit: int) -> list[OutboxEntry]:
        check_outbox_claim(before, limit)
        entries = [
            e for e in self._store._outbox.values() if e.id not in self._outbox_removed
        ] + list(self._outbox_added.values())
        entries = sorted((e for e in entries if e.created_at <= before), key=_outbox_order)
        return entries[:limit]

    def remove_outbox(self, ids: Iterable[str]) -> int:
        removed = 0
        for entry_id in set(ids):
            if self._outbox_added.pop(entry_id, None) is not None:
                removed += 1
            elif entry_id in self._store._outbox and entry_id not in self._outbox_removed:
                self._outbox_removed.add(entry_id)
                removed += 1
        return removed
