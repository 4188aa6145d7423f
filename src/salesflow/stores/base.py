"""The store port: units of work, queries and the catalogue of queryable fields.

A store keeps records of five kinds (lead, contact, account, opportunity,
activity). Every command of the engine runs in one `UnitOfWork`: reads see the
unit's own writes, and nothing is visible to others until `UnitOfWork.commit`.
Queries (`Query`) are plain data that each store answers with its own means:
the memory store in Python, the SQL stores as indexed SQL with the same result.

The protocols `UnitOfWork` and `Store` are defined here. What they speak of lives
in two modules: `salesflow.stores.columns` holds the catalogue of queryable fields
(`Column`, `columns_of`, lookup and search keys, field checks, `sort_order`,
`iter_kinds`), and `salesflow.stores.query` holds `Query`, `Page`, the report rows
and the ``check_*`` checks of store-method arguments. Every one of those names is
re-exported from here, so importing it from ``salesflow.stores.base`` still works.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar

from salesflow.activity import Activity
from salesflow.conditions import Condition
from salesflow.definitions import StateDocument, StoredDefinition
from salesflow.due import DueItem
from salesflow.interactions import Interaction
from salesflow.outbox import OutboxEntry
from salesflow.scoring_compile import ScoreResult
from salesflow.sequences.enrollment import Enrollment
from salesflow.stores.columns import (
    Column,
    ColumnType,
    LookupKey,
    check_comparison,
    check_fields,
    column_type,
    columns_of,
    derived_columns,
    field_reader,
    lookup_keys,
    record_value,
    search_keys,
    sort_order,
)
from salesflow.stores.columns import iter_kinds as iter_kinds
from salesflow.stores.query import (
    CONVERTIBLE,
    GroupCount,
    Page,
    Query,
    SequenceConversion,
    SortKey,
    SpanStats,
    bounded_group,
    check_claim,
    check_conversion_window,
    check_interaction_lookup,
    check_key,
    check_remove_scores,
    check_scored_activities,
    check_span,
    check_top_scored,
    counted_total,
    group_count_bound,
)
from salesflow.values import Record, RecordKind, RecordRef

__all__ = [
    "CONVERTIBLE",
    "Column",
    "ColumnType",
    "GroupCount",
    "LookupKey",
    "Page",
    "Query",
    "SequenceConversion",
    "SortKey",
    "SpanStats",
    "Store",
    "StoredDefinition",
    "UnitOfWork",
    "bounded_group",
    "check_claim",
    "check_comparison",
    "check_conversion_window",
    "check_fields",
    "check_interaction_lookup",
    "check_key",
    "check_remove_scores",
    "check_scored_activities",
    "check_span",
    "check_top_scored",
    "column_type",
    "columns_of",
    "counted_total",
    "derived_columns",
    "field_reader",
    "group_count_bound",
    "lookup_keys",
    "record_value",
    "search_keys",
    "sort_order",
]

R = TypeVar("R", bound=Record)


class UnitOfWork(Protocol):
    """One all-or-nothing transaction over the store.

    Changes are visible to the unit itself at once and to everyone else only
    after `commit`. Leaving the context without commit rolls back.
    """

    def get(self, cls: type[R], record_id: str) -> R:
        """Return the record, or raise `NotFound`."""
        ...

    def find(self, cls: type[R], record_id: str) -> R | None:
        """Return the record or ``None``."""
        ...

    def add(self, record: Record) -> None:
        """Store a new record (its ``version`` must be 1), or raise `AlreadyExists`."""
        ...

    def update(self, record: Record) -> Record:
        """Store a changed record read at ``record.version``; return it at version + 1.

        Raises:
            NotFound: no such record.
            VersionConflict: the stored version is not ``record.version``.
        """
        ...

    def find_by(self, cls: type[R], key: str, value: str) -> list[R]:
        """Records whose lookup key ``key`` (see `lookup_keys`) equals ``value``,
        most recently modified first."""
        ...

    def find_many_by(self, cls: type[R], key: str, values: Iterable[str]) -> dict[str, list[R]]:
        """`find_by` for many values at once (a batch of intake rows): each distinct
        value → its records, most recently modified first (empty when none)."""
        ...

    def find_ids_by(self, cls: type[R], key: str, values: Iterable[str]) -> dict[str, list[str]]:
        """The ids of the records `find_many_by` would return (same order), without
        reading the records: the exact-match lookup of a batch of intake rows."""
        ...

    def query(self, cls: type[R], query: Query) -> Page[R]:
        """Answer ``query`` over records of ``cls``."""
        ...

    def group_counts(self, cls: type[R], query: Query, field: str) -> list[GroupCount]:
        """Count the records matching ``query`` (ignoring its paging) per value of
        ``field``, ordered as sorting by ``field`` orders them (`sort_order`): empty
        first, an option-set field in option order.

        With ``query.count_limit`` of 1 or more and an option-set field, each group
        (empty, each option) is counted up to that limit: a bigger one comes back
        with the limit as its count and ``exact=False``, as views show "5,000+"
        (`group_count_bound`). Other fields, or no limit, are counted exactly."""
        ...

    def span_stats(
        self, cls: type[R], query: Query, start: str, end: str, group_by: str | None = None
    ) -> list[SpanStats]:
        """Durations from date-time field ``start`` to ``end`` over the records
        matching ``query`` (its paging ignored) that have both set, per value of
        ``group_by`` (ordered as sorting by it orders them) or over all of them (one
        row, ``value`` None, when any record counts; none otherwise). Computed by the
        database in SQL stores.

        Raises:
            ValidationError: a field is unknown or not a date-time field (`check_span`).
        """
        ...

    def sequence_conversions(
        self,
        kind: RecordKind,
        since: datetime,
        until: datetime,
        *,
        owners: frozenset[str] | None = None,
        unowned: bool = True,
    ) -> list[SequenceConversion]:
        """Per sequence (by id), the enrollments of ``kind`` records connected in
        ``[since, until)`` and how many of their records have converted: a lead
        qualified into an opportunity, an opportunity won. Enrollments without a
        connection time (stored before salesflow kept one) are not counted. Computed
        by the database in SQL stores, through an index on (kind, connection time).

        ``owners`` counts only the enrollments of records those owners own (and, when
        ``unowned``, of records without an owner); None counts every record (an
        access-control scope, `salesflow.access.Scope`).

        Raises:
            ValidationError: see `check_conversion_window`.
        """
        ...

    def timeline(self, ref: RecordRef) -> list[Activity]:
        """The activities regarding ``ref`` in timeline order (`timeline_key`)."""
        ...

    # --- due items (see salesflow.due) ---------------------------------------------

    def schedule(self, item: DueItem) -> DueItem:
        """Store a new due item.

        Returns:
            ``item`` when it was stored; when ``item.key`` is set and an item with
            that key is already stored (also one this unit scheduled), that stored
            item instead, and nothing changes (scheduling is idempotent).

        Raises:
            AlreadyExists: an item with ``item.id`` is stored (and the key did not
                match one).
        """
        ...

    def cancel_due(self, item_id: str) -> bool:
        """Delete the item with ``item_id``; False when there is none."""
        ...

    def cancel_due_by_key(self, key: str) -> bool:
        """Delete the item with uniqueness key ``key``; False when there is none."""
        ...

    def claim_due(self, now: datetime, limit: int) -> list[DueItem]:
        """Take up to ``limit`` items with ``due_at <= now``, in ``(due_at, id)`` order.

        Until this unit ends, no other unit claims them: PostgreSQL locks their rows
        (``FOR UPDATE SKIP LOCKED``, so other claimers get the next items at once),
        SQLite and the memory store run one unit at a time. Items this unit already
        claimed are not returned again. Claiming changes nothing: `complete_due`
        deletes an item, and a unit that ends without commit leaves it due.

        Raises:
            ValidationError: ``now`` is naive or ``limit`` is not a whole number >= 1.
        """
        ...

    def complete_due(self, item_id: str) -> bool:
        """Delete a performed item (at commit it is gone for good); False when there
        is none."""
        ...

    def replace_due(self, current: DueItem, new: DueItem | None) -> bool:
        """Swap ``current`` for ``new`` (same id), or delete it when ``new`` is None,
        if the store still holds ``current`` unchanged (same id, ``due_at`` and
        ``attempts``); otherwise change nothing.

        The engine records a failed attempt this way, in a unit of its own after the
        failed one rolled back: an item that another worker performed or retried in
        between is left alone.

        Returns:
            True when the swap happened.
        """
        ...

    def next_due_at(self) -> datetime | None:
        """The earliest ``due_at`` of any stored item (claimed ones included), or
        None when there are no items."""
        ...

    def due_items(self, subject: RecordRef | None = None) -> list[DueItem]:
        """Every stored item, or those about ``subject``, in ``(due_at, id)`` order."""
        ...

    # --- definitions (see StoredDefinition) -----------------------------------------

    def add_definition(self, definition: StoredDefinition) -> None:
        """Store a new version of a definition.

        Raises:
            AlreadyExists: that ``(kind, id, version)`` is stored already.
        """
        ...

    def set_definition_state(
        self, kind: str, definition_id: str, version: int, state: str
    ) -> StoredDefinition:
        """Change the ``state`` of a stored version; return it as stored now.

        Raises:
            NotFound: no such version.
        """
        ...

    def find_definition(
        self, kind: str, definition_id: str, version: int | None = None
    ) -> StoredDefinition | None:
        """The stored ``version`` of a definition (the latest when None), or None."""
        ...

    def definitions(self, kind: str) -> list[StoredDefinition]:
        """The latest version of every definition of ``kind``, ordered by id."""
        ...

    # --- enrollments (see salesflow.sequences.enrollment) ---------------------------

    def add_enrollment(self, enrollment: Enrollment) -> None:
        """Store a new enrollment (its ``version`` must be 1).

        Raises:
            AlreadyExists: an enrollment with its id is stored.
            VersionConflict: its version is not 1.
        """
        ...

    def update_enrollment(self, enrollment: Enrollment) -> None:
        """Store the next state of an enrollment: the runtime hands back each new
        state one ``version`` higher than the state it was computed from, so the
        stored version must be ``enrollment.version - 1``.

        Raises:
            NotFound: no such enrollment.
            VersionConflict: the stored version is not ``enrollment.version - 1``
                (someone else moved it meanwhile).
        """
        ...

    def find_enrollment(self, enrollment_id: str) -> Enrollment | None:
        """The enrollment with ``enrollment_id``, or None."""
        ...

    def enrollments(
        self,
        *,
        record: RecordRef | None = None,
        sequence_id: str | None = None,
        running: bool = False,
    ) -> list[Enrollment]:
        """The enrollments of ``record`` and/or of ``sequence_id`` (every one when
        both are None), only those not ended (active or paused) when ``running``,
        ordered by id. Lookups by record and by sequence use an index."""
        ...

    # --- interactions (see salesflow.interactions) -----------------------------------

    def add_interaction(self, interaction: Interaction) -> None:
        """Store an interaction (they never change once stored).

        Raises:
            AlreadyExists: an interaction with its id is stored.
        """
        ...

    def find_interaction(self, interaction_id: str) -> Interaction | None:
        """The interaction with ``interaction_id``, or None."""
        ...

    def interactions(
        self,
        *,
        contact_ids: Sequence[str] = (),
        lead_id: str | None = None,
        account_id: str | None = None,
        since: datetime | None = None,
    ) -> list[Interaction]:
        """The interactions of any of ``contact_ids``, of ``lead_id`` or of
        ``account_id`` (their union; at least one must be given), that occurred at or
        after ``since`` when given, ordered by ``(occurred_at, id)``. Each lookup uses
        an index (contact, lead, account, each with the time).

        Raises:
            ValidationError: none of contact_ids, lead_id and account_id is given, or
                ``since`` is naive.
        """
        ...

    # --- lead scores (see salesflow.scoring) -------------------------------------------

    def add_score(self, score: ScoreResult) -> None:
        """Keep a lead's new score under one model; every score is kept (history),
        the latest per model is the current one."""
        ...

    def scores(self, lead_id: str) -> list[ScoreResult]:
        """The current score of the lead under each model (the latest ``scored_at``,
        then the latest added), ordered by model id."""
        ...

    def score_history(self, lead_id: str, model_id: str | None = None) -> list[ScoreResult]:
        """Every score the lead had (under ``model_id`` when given), oldest first
        (``scored_at``, then model id, then the order they were added)."""
        ...

    def best_scores(self, lead_ids: Iterable[str]) -> dict[str, int]:
        """Each lead's best current score (the highest points among its `scores`),
        for the leads of ``lead_ids`` that have a score."""
        ...

    def top_scored_leads(
        self, limit: int, after: tuple[str, int] | None = None
    ) -> list[tuple[str, int]]:
        """Up to ``limit`` ``(lead id, best score)`` pairs, the best score first, then
        by lead id; ``after`` (a pair returned before) continues after it. The SQL
        stores read an index, so a page costs the same at any size.

        Raises:
            ValidationError: ``limit`` is not a whole number from 1 to 10,000.
        """
        ...

    def remove_model_scores(self, model_id: str, limit: int) -> list[str]:
        """Delete every score ``model_id`` gave (its whole history) of up to ``limit``
        leads that have one, the first by lead id, and recompute those leads' best
        scores from what they have left (a stopped model's clean-up).

        Returns:
            The ids of the leads whose scores were removed; fewer than ``limit`` when
            no lead has a score of the model any more.

        Raises:
            ValidationError: ``model_id`` is not a non-empty string, or ``limit`` is
                not a whole number from 1 to 10,000.
        """
        ...

    def scored_lead_activities(
        self, where: Condition, limit: int, offset: int = 0
    ) -> list[tuple[Activity, int]]:
        """The activities matching ``where`` that regard a lead with a best score (see
        `best_scores`), each with that score, in the work list's score order: the
        best score first, then the due time (dated first, earliest first), then the
        lead's id, the activity's ``created_at`` and id; ``limit`` of them after the
        first ``offset``. A lead's first activity in this order is its next action.

        The SQL stores answer with one query that joins the activities to
        ``sf_best_scores`` and sorts in the database, then read the page's
        documents.

        Raises:
            ValidationError: ``where`` names a field activities lack, or ``limit``
                (1 to 10,000) or ``offset`` (0 or more) is not a whole number in range.
        """
        ...

    # --- running state (see salesflow.definitions.StateDocument) ---------------------

    def get_state(self, kind: str, key: str) -> StateDocument | None:
        """The state document ``(kind, key)``, or None."""
        ...

    def put_state(
        self,
        kind: str,
        key: str,
        document: dict[str, Any],
        *,
        expected_version: int | None,
        now: datetime,
    ) -> StateDocument:
        """Store a state document: a new one when ``expected_version`` is None, else
        the next version of the stored one read at ``expected_version``.

        Returns:
            The stored document (version 1, or ``expected_version + 1``).

        Raises:
            AlreadyExists: ``expected_version`` is None but the state exists.
            NotFound: ``expected_version`` is given but there is no such state.
            VersionConflict: the stored version is not ``expected_version``.
            ValidationError: ``document`` is not JSON values, or ``now`` is naive.
        """
        ...

    def states(self, kind: str) -> list[StateDocument]:
        """Every state document of ``kind``, ordered by key."""
        ...

    # --- the outbox (see salesflow.outbox) ---------------------------------------------

    def put_outbox(self, entry: OutboxEntry) -> None:
        """Keep ``entry`` (the events of this unit) until `remove_outbox` removes it.

        Raises:
            AlreadyExists: an entry with its id is stored.
            ValidationError: ``entry`` is not an `OutboxEntry`.
        """
        ...

    def claim_outbox(self, before: datetime, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` stored entries created at or before ``before``, oldest first
        (``created_at``, then id). PostgreSQL locks them until the unit ends and skips
        those another unit holds, so two deliverers never take the same entry.

        Raises:
            ValidationError: ``before`` is naive, or ``limit`` is not 1 to 10,000.
        """
        ...

    def remove_outbox(self, ids: Iterable[str]) -> int:
        """Remove the entries with these ids; returns how many were stored."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A block whose changes are undone, and only those, when it raises: the unit
        goes on as it was before the block (SQL ``SAVEPOINT``; MemoryStore keeps a
        copy of the unit's pending changes). The engine runs each automation rule's
        action in one, so a failed action leaves nothing behind."""
        ...

    def commit(self) -> None:
        """Make every change of this unit durable and visible."""
        ...


class Store(Protocol):
    """Where records live. `unit_of_work` is the only way in."""

    def unit_of_work(self, *, read_only: bool = False) -> AbstractContextManager[UnitOfWork]:
        """Open a unit of work; it rolls back unless committed.

        A ``read_only`` unit reads as any other and refuses every write with a
        `StoreError` (wrap the unit with `salesflow.stores.readonly.read_only`); the
        store may open a cheaper transaction for it, one that takes no write lock.
        The engine runs its queries in read-only units.
        """
        ...

    def migrate(self) -> int:
        """Rewrite every stored document older than the codec's current schema.

        Each such record is decoded (which runs the codec's migrations) and stored
        again exactly as a write stores it, so every column derived from it is
        current, but its ``version`` is kept: a migration is not an edit. The work
        is done in transactions of bounded size; when it fails part-way, what is
        done stays done and calling again carries on.

        Returns:
            How many records were rewritten (0 when every document was current).

        Raises:
            StoreError: the store holds a document from a newer schema than the
                codec understands, or one that cannot be migrated or read.
        """
        ...

    def close(self) -> None:
        """Release connections and files. The store cannot be used afterwards."""
        ...
