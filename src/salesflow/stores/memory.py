"""`MemoryStore`: records in Python dicts, for embedding, tests and simulations.

Units of work are serialized by a lock, buffer their writes and apply them on
commit, so a failed command leaves nothing behind. Records are copied in and
out, so a host holding a record cannot change the store behind its back.
`dump` and `load` save and restore the whole store through the codec.

A unit of work is a ``_MemoryUnit``: it keeps the CRM records and the due items
here, with its buffers, `savepoint` and `commit`, and inherits the definition and
enrollment, interaction, lead-score, running-state and outbox methods from the
mixins of `salesflow.stores.memory_units`, where the helpers that copy records
live too.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from salesflow.activity import Activity, timeline_key
from salesflow.conditions import compile_predicate
from salesflow.definitions import StateDocument, StoredDefinition
from salesflow.due import DueItem, check_payload, copy_checked
from salesflow.errors import AlreadyExists, NotFound, StoreError, ValidationError, VersionConflict
from salesflow.interactions import Interaction
from salesflow.outbox import OutboxEntry
from salesflow.scoring_compile import ScoreResult
from salesflow.sequences.enrollment import Enrollment
from salesflow.stores.base import (
    GroupCount,
    Page,
    Query,
    SequenceConversion,
    SpanStats,
    UnitOfWork,
    bounded_group,
    check_claim,
    check_conversion_window,
    check_fields,
    check_span,
    counted_total,
    field_reader,
    group_count_bound,
    lookup_keys,
    search_keys,
    sort_order,
)
from salesflow.stores.codec import (
    RECORD_TYPES,
    Codec,
    decode_definition,
    decode_due_item,
    decode_enrollment,
    decode_interaction,
    decode_score,
    encode_definition,
    encode_due_item,
    encode_enrollment,
    encode_interaction,
    encode_score,
)
from salesflow.stores.memory_units import (
    MemoryInteractionUnit,
    MemoryOutboxUnit,
    MemoryScoreUnit,
    MemorySequenceUnit,
    MemoryStateUnit,
    R,
    clone_record,
    interaction_keys,
)
from salesflow.stores.readonly import read_only as read_only_unit
from salesflow.values import Record, RecordKind, RecordRef, shallow_copy

__all__ = ["MemoryStore"]

_VERSION_LIMIT = 2**62
"""The highest version `Record` accepts (its validator); below it, one more is fine."""


def _due_in(item: DueItem) -> DueItem:
    # A caller may have changed the payload it passed since the item was built:
    # check the copy kept, as a store that encodes it would.
    twin = shallow_copy(item)
    object.__setattr__(twin, "payload", check_payload(item.payload))
    return twin


def _copy_due(item: DueItem) -> DueItem:
    # the payload was checked when the item was built: copy it, do not check it again
    twin = shallow_copy(item)
    object.__setattr__(twin, "payload", copy_checked(item.payload))
    return twin


class MemoryStore:
    """Keeps every record in memory; the embedded default.

    Args:
        codec: The codec used by `dump` and `load`.
    """

    def __init__(self, codec: Codec | None = None) -> None:
        self._codec = codec or Codec()
        self._records: dict[RecordKind, dict[str, Record]] = {k: {} for k in RECORD_TYPES}
        # lookup key -> value -> ids, so matching and qualify never scan every record
        self._index: dict[tuple[RecordKind, str], dict[str, set[str]]] = {
            (kind, key.name): {} for kind in RECORD_TYPES for key in lookup_keys(kind)
        }
        # Due items: by id, id by key, and a heap of (due_at, id) that may hold stale
        # entries (an item since deleted or moved), dropped when they reach the top.
        self._due: dict[str, DueItem] = {}
        self._due_keys: dict[str, str] = {}
        self._due_heap: list[tuple[datetime, str]] = []
        # Definitions: every version of each (kind, id), in version order.
        self._definitions: dict[tuple[str, str], list[StoredDefinition]] = {}
        # Enrollments by id, with ids by record and by sequence for the lookups.
        self._enrollments: dict[str, Enrollment] = {}
        self._by_record: dict[RecordRef, set[str]] = {}
        self._by_sequence: dict[str, set[str]] = {}
        # Interactions by id, with ids by contact, lead and account for the lookups.
        self._interactions: dict[str, Interaction] = {}
        self._interactions_by: dict[tuple[str, str], list[str]] = {}
        # Every score of each lead, in the order added.
        self._scores: dict[str, list[ScoreResult]] = {}
        # Running state documents by (kind, key).
        self._states: dict[tuple[str, str], StateDocument] = {}
        # The outbox: entries by id.
        self._outbox: dict[str, OutboxEntry] = {}
        self._lock = threading.RLock()
        self._busy = False
        self._closed = False

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[UnitOfWork]:
        """Open a unit of work; it holds the store's lock until it ends.

        Args:
            read_only: The unit refuses every write (`salesflow.stores.readonly`).
        """
        if self._closed:
            raise StoreError("this MemoryStore is closed; create a new one")
        with self._lock:
            # The lock is re-entrant only so that this check can speak: a nested unit
            # would commit separately from its parent, which no SQL store allows either.
            if self._busy:
                raise StoreError(
                    "a unit of work is already open on this MemoryStore in this thread; "
                    "finish it before opening another"
                )
            self._busy = True
            try:
                unit = _MemoryUnit(self)
                yield read_only_unit(unit, "MemoryStore") if read_only else unit
            finally:
                self._busy = False

    def migrate(self) -> int:
        """Rewrite stored documents older than the codec's schema: never any here.

        A MemoryStore keeps records, not documents: `load` decodes (and so
        migrates) every document it is given, and `dump` encodes at the codec's
        current schemas. There is nothing left to upgrade in place.

        Returns:
            0, always.

        Raises:
            StoreError: the store is closed.
        """
        if self._closed:
            raise StoreError("this MemoryStore is closed; create a new one")
        return 0

    def close(self) -> None:
        """Forget every record."""
        self._closed = True
        self._records = {k: {} for k in RECORD_TYPES}
        self._index = {k: {} for k in self._index}
        self._due = {}
        self._due_keys = {}
        self._due_heap = []
        self._definitions = {}
        self._enrollments = {}
        self._by_record = {}
        self._by_sequence = {}
        self._interactions = {}
        self._interactions_by = {}
        self._scores = {}
        self._states = {}
        self._outbox = {}

    def _store_interaction(self, interaction: Interaction) -> None:
        self._interactions[interaction.id] = interaction
        for key in interaction_keys(interaction):
            self._interactions_by.setdefault(key, []).append(interaction.id)

    def _store_definition(self, definition: StoredDefinition) -> None:
        versions = self._definitions.setdefault((definition.kind, definition.id), [])
        for i, stored in enumerate(versions):
            if stored.version == definition.version:
                versions[i] = definition
                return
        versions.append(definition)
        versions.sort(key=lambda d: d.version)

    def _store_enrollment(self, enrollment: Enrollment) -> None:
        # record and sequence never change, so the indexes only ever gain ids
        if enrollment.id not in self._enrollments:
            self._by_record.setdefault(enrollment.record, set()).add(enrollment.id)
            self._by_sequence.setdefault(enrollment.sequence_id, set()).add(enrollment.id)
        self._enrollments[enrollment.id] = enrollment

    def _store(self, record: Record) -> None:
        """Put a committed record in place and keep the lookup indexes current."""
        kind = record.KIND
        before = self._records[kind].get(record.id)
        for key in lookup_keys(kind):
            index = self._index[(kind, key.name)]
            old = key.read(before) if before is not None else None
            new = key.read(record)
            if old == new:
                continue
            if old is not None:
                index[old].discard(record.id)
                if not index[old]:
                    del index[old]
            if new is not None:
                index.setdefault(new, set()).add(record.id)
        self._records[kind][record.id] = record

    def _store_due(self, item: DueItem) -> None:
        self._due[item.id] = item
        if item.key is not None:
            self._due_keys[item.key] = item.id
        heapq.heappush(self._due_heap, (item.due_at, item.id))

    def _drop_due(self, item_id: str) -> None:
        item = self._due.pop(item_id, None)
        if item is not None and item.key is not None and self._due_keys.get(item.key) == item_id:
            del self._due_keys[item.key]

    def _live(self, entry: tuple[datetime, str]) -> bool:
        item = self._due.get(entry[1])
        return item is not None and item.due_at == entry[0]

    def _due_in_order(
        self, until: datetime | None, wanted: int, eligible: Callable[[DueItem], bool]
    ) -> list[DueItem]:
        """Up to ``wanted`` committed items with ``due_at <= until`` (any when None) that
        ``eligible`` accepts, in (due_at, id) order, reading the heap from its top."""
        heap = self._due_heap
        kept: list[tuple[datetime, str]] = []
        found: list[DueItem] = []
        seen: set[str] = set()
        while heap and len(found) < wanted:
            entry = heap[0]
            if until is not None and entry[0] > until:
                break
            heapq.heappop(heap)
            if entry[1] in seen or not self._live(entry):
                continue  # stale or duplicate: gone for good
            seen.add(entry[1])
            kept.append(entry)
            item = self._due[entry[1]]
            if eligible(item):
                found.append(item)
        for entry in kept:
            heapq.heappush(heap, entry)
        return found

    def _indexed(self, kind: RecordKind, key: str, value: str) -> list[Record]:
        ids = self._index[(kind, key)].get(value, ())
        return [self._records[kind][i] for i in ids]

    def dump(self) -> dict[str, Any]:
        """Every record and due item as JSON-able documents, for `load` (save/restore)."""
        with self._lock:
            return {
                "records": {
                    kind.value: [self._codec.encode(r) for r in records.values()]
                    for kind, records in self._records.items()
                },
                "due": [encode_due_item(item) for item in self._due.values()],
                "definitions": [
                    encode_definition(d)
                    for versions in self._definitions.values()
                    for d in versions
                ],
                "enrollments": [encode_enrollment(e) for e in self._enrollments.values()],
                "interactions": [encode_interaction(i) for i in self._interactions.values()],
                "scores": [encode_score(x) for history in self._scores.values() for x in history],
                "states": [
                    {
                        "kind": d.kind,
                        "key": d.key,
                        "version": d.version,
                        "document": d.document,
                        "updated_at": d.updated_at.isoformat(),
                    }
                    for d in self._states.values()
                ],
                "outbox": [
                    {
                        "id": e.id,
                        "created_at": e.created_at.isoformat(),
                        "events": list(e.events),
                    }
                    for e in self._outbox.values()
                ],
            }

    @classmethod
    def load(cls, snapshot: dict[str, Any], codec: Codec | None = None) -> MemoryStore:
        """A new store holding the records of a `dump`, migrated by ``codec``."""
        store = cls(codec)
        for kind_value, docs in snapshot["records"].items():
            kind = RecordKind(kind_value)
            for doc in docs:
                store._store(store._codec.decode(kind, doc))
        for doc in snapshot.get("due", ()):  # snapshots from before due items have none
            store._store_due(decode_due_item(doc))
        for doc in snapshot.get("definitions", ()):
            store._store_definition(decode_definition(doc))
        for doc in snapshot.get("enrollments", ()):
            store._store_enrollment(decode_enrollment(doc))
        for doc in snapshot.get("interactions", ()):
            store._store_interaction(decode_interaction(doc))
        for doc in snapshot.get("scores", ()):
            score = decode_score(doc)
            store._scores.setdefault(score.lead_id, []).append(score)
        for doc in snapshot.get("states", ()):
            state = StateDocument(
                kind=doc["kind"],
                key=doc["key"],
                version=doc["version"],
                document=doc["document"],
                updated_at=datetime.fromisoformat(doc["updated_at"]),
            )
            store._states[(state.kind, state.key)] = state
        for doc in snapshot.get("outbox", ()):
            entry = OutboxEntry(
                id=doc["id"],
                created_at=datetime.fromisoformat(doc["created_at"]),
                events=doc["events"],
            )
            store._outbox[entry.id] = entry
        return store


class _MemoryUnit(
    MemorySequenceUnit, MemoryInteractionUnit, MemoryScoreUnit, MemoryStateUnit, MemoryOutboxUnit
):
    """The `UnitOfWork` operations on a `MemoryStore`: the record and due-item ones are
    here, the others are inherited from the mixins of `salesflow.stores.memory_units`.
    """

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._pending: dict[RecordKind, dict[str, Record]] = {}
        self._done = False
        # Due items this unit stored (new or replacing) and committed ones it deleted.
        self._due_added: dict[str, DueItem] = {}
        self._due_added_keys: dict[str, str] = {}  # key -> id of the items in _due_added
        self._due_removed: set[str] = set()
        self._claimed: set[str] = set()
        self._definitions: dict[tuple[str, str, int], StoredDefinition] = {}
        self._enrollments: dict[str, Enrollment] = {}
        # the ids of the enrollments this unit added, by record (a record never
        # changes), so that connecting many records does not scan them all each time
        self._enrollments_by_record: dict[RecordRef, list[str]] = {}
        self._interactions: dict[str, Interaction] = {}
        self._pending_index: dict[tuple[RecordKind, str], dict[str, set[str]]] = {}
        self._scores: list[ScoreResult] = []
        self._states: dict[tuple[str, str], StateDocument] = {}
        self._outbox_added: dict[str, OutboxEntry] = {}
        self._outbox_removed: set[str] = set()
        # (lead id, model id) pairs whose committed scores this unit removed
        self._scores_removed: set[tuple[str, str]] = set()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        saved = (
            {kind: dict(records) for kind, records in self._pending.items()},
            dict(self._due_added),
            dict(self._due_added_keys),
            set(self._due_removed),
            set(self._claimed),
            dict(self._definitions),
            dict(self._enrollments),
            {ref: list(ids) for ref, ids in self._enrollments_by_record.items()},
            dict(self._interactions),
            {
                key: {value: set(ids) for value, ids in index.items()}
                for key, index in self._pending_index.items()
            },
            list(self._scores),
            dict(self._states),
            dict(self._outbox_added),
            set(self._outbox_removed),
            set(self._scores_removed),
        )
        try:
            yield
        except BaseException:
            (
                self._pending,
                self._due_added,
                self._due_added_keys,
                self._due_removed,
                self._claimed,
                self._definitions,
                self._enrollments,
                self._enrollments_by_record,
                self._interactions,
                self._pending_index,
                self._scores,
                self._states,
                self._outbox_added,
                self._outbox_removed,
                self._scores_removed,
            ) = saved
            raise

    def _current(self, kind: RecordKind, record_id: str) -> Record | None:
        pending = self._pending.get(kind)
        if pending is not None and record_id in pending:
            return pending[record_id]
        return self._store._records[kind].get(record_id)

    def _all(self, kind: RecordKind) -> Iterator[Record]:
        pending = self._pending.get(kind, {})
        for record_id, record in self._store._records[kind].items():
            yield pending.get(record_id, record)
        committed = self._store._records[kind]
        for record_id, record in pending.items():
            if record_id not in committed:
                yield record

    def find(self, cls: type[R], record_id: str) -> R | None:
        record = self._current(cls.KIND, record_id)
        return clone_record(record) if record is not None else None  # type: ignore[return-value]

    def get(self, cls: type[R], record_id: str) -> R:
        record = self.find(cls, record_id)
        if record is None:
            raise NotFound(cls.__name__, record_id)
        return record

    def add(self, record: Record) -> None:
        if self._current(record.KIND, record.id) is not None:
            raise AlreadyExists(type(record).__name__, record.id)
        if record.version != 1:
            raise VersionConflict(type(record).__name__, record.id, expected=1, actual=0)
        self._pending.setdefault(record.KIND, {})[record.id] = clone_record(record)
        self._index_pending(record)

    def _index_pending(self, record: Record) -> None:
        """Index a record this unit wrote by its lookup keys: a batch of writes (an
        import) looks its own records up as often as the committed ones."""
        for key in lookup_keys(record.KIND):
            value = key.read(record)
            if value is not None:
                self._pending_index.setdefault((record.KIND, key.name), {}).setdefault(
                    value, set()
                ).add(record.id)

    def update(self, record: Record) -> Record:
        stored = self._current(record.KIND, record.id)
        if stored is None:
            raise NotFound(type(record).__name__, record.id)
        if stored.version != record.version:
            raise VersionConflict(
                type(record).__name__, record.id, expected=record.version, actual=stored.version
            )
        saved = clone_record(record)
        if record.version < _VERSION_LIMIT:
            # one more than a version the class accepted: no need to validate it again
            object.__setattr__(saved, "version", record.version + 1)
        else:
            saved.version = record.version + 1  # the class refuses it
        self._pending.setdefault(record.KIND, {})[record.id] = saved
        self._index_pending(saved)
        return clone_record(saved)

    def find_by(self, cls: type[R], key: str, value: str) -> list[R]:
        lookup = next((k for k in lookup_keys(cls.KIND) if k.name == key), None)
        if lookup is None:
            raise StoreError(f"{cls.__name__} has no lookup key {key!r}")
        pending = self._pending.get(cls.KIND, {})
        committed = [r for r in self._store._indexed(cls.KIND, key, value) if r.id not in pending]
        # the pending index may name records whose key has changed since: check them
        ids = self._pending_index.get((cls.KIND, key), {}).get(value, ())
        found = committed + [
            r for r in (pending[i] for i in sorted(ids)) if lookup.read(r) == value
        ]
        found.sort(key=lambda r: (r.modified_at, r.id), reverse=True)
        return [clone_record(r) for r in found]  # type: ignore[misc]

    def find_many_by(self, cls: type[R], key: str, values: Iterable[str]) -> dict[str, list[R]]:
        return {value: self.find_by(cls, key, value) for value in dict.fromkeys(values)}

    def find_ids_by(self, cls: type[R], key: str, values: Iterable[str]) -> dict[str, list[str]]:
        if not any(k.name == key for k in lookup_keys(cls.KIND)):
            raise StoreError(f"{cls.__name__} has no lookup key {key!r}")
        kind = cls.KIND
        index = self._store._index[(kind, key)]
        pending = self._pending.get(kind)
        records = self._store._records[kind]
        found: dict[str, list[str]] = {}
        for value in values:
            if value in found:
                continue
            ids = index.get(value)
            if pending:  # the unit's own writes: slow path, still indexed
                found[value] = [r.id for r in self.find_by(cls, key, value)]
            elif not ids:
                found[value] = []
            elif len(ids) == 1:
                found[value] = list(ids)
            else:
                ordered = sorted(ids, key=lambda i: (records[i].modified_at, i), reverse=True)
                found[value] = ordered
        return found

    def _matching(self, cls: type[R], query: Query) -> list[Record]:
        query.check(cls.KIND)
        kind = cls.KIND
        records: Iterator[Record] = self._all(kind)
        if query.where is not None:
            keep = compile_predicate(query.where, lambda name: field_reader(kind, name))
            records = (r for r in records if keep(r))
        term = query.search_term
        if term is None:
            return list(records)
        text, contains = term
        readers = [k.read for k in search_keys(kind)]

        def hit(record: Record) -> bool:
            for read in readers:
                value = read(record)
                if value is not None and (text in value if contains else value.startswith(text)):
                    return True
            return False

        return [r for r in records if hit(r)]

    def query(self, cls: type[R], query: Query) -> Page[R]:
        matching = self._matching(cls, query)
        # Stable sorts from the last key to the first give the multi-key order with
        # per-key directions, ties by id, without a wrapper object per record.
        matching.sort(key=lambda r: r.id)
        for sort in reversed(query.order_by):
            read = field_reader(cls.KIND, sort.field)
            order = sort_order(cls.KIND, sort.field)
            matching.sort(key=lambda r: order(read(r)), reverse=sort.descending)
        window = matching[query.offset : query.offset + query.limit]
        total, exact = counted_total(
            query,
            len(window),
            lambda most: len(matching) if most is None else min(most, len(matching)),
        )
        return Page(
            items=tuple(clone_record(r) for r in window),  # type: ignore[misc]
            total=total,
            offset=query.offset,
            limit=query.limit,
            total_exact=exact,
        )

    def span_stats(
        self, cls: type[R], query: Query, start: str, end: str, group_by: str | None = None
    ) -> list[SpanStats]:
        kind = cls.KIND
        check_span(kind, start, end, group_by)
        read_start, read_end = field_reader(kind, start), field_reader(kind, end)
        read_group = field_reader(kind, group_by) if group_by is not None else None
        spans: dict[Any, list[float]] = {}
        for record in self._matching(cls, query):
            began, ended = read_start(record), read_end(record)
            if began is None or ended is None:
                continue
            value = read_group(record) if read_group is not None else None
            spans.setdefault(value, []).append((ended - began).total_seconds())
        found = [
            SpanStats(
                value=value,
                count=len(seconds),
                mean_seconds=sum(seconds) / len(seconds),
                min_seconds=min(seconds),
                max_seconds=max(seconds),
            )
            for value, seconds in spans.items()
        ]
        if group_by is None:
            return found
        order = sort_order(kind, group_by)
        return sorted(found, key=lambda stats: order(stats.value))

    def sequence_conversions(
        self,
        kind: RecordKind,
        since: datetime,
        until: datetime,
        *,
        owners: frozenset[str] | None = None,
        unowned: bool = True,
    ) -> list[SequenceConversion]:
        check_conversion_window(kind, since, until)
        counts: dict[str, list[int]] = {}
        for e in self.enrollments():
            if e.record.kind is not kind or e.connected_at is None:
                continue
            if not since <= e.connected_at < until:
                continue
            record = self._current(kind, e.record.id)
            if owners is not None:
                owner = getattr(record, "owner_id", None)
                if not (unowned if owner is None else owner in owners):
                    continue
            tally = counts.setdefault(e.sequence_id, [0, 0])
            tally[0] += 1
            if record is not None and _converted(record):
                tally[1] += 1
        return [
            SequenceConversion(sequence_id=sid, connected=n, converted=won)
            for sid, (n, won) in sorted(counts.items())
        ]

    def group_counts(self, cls: type[R], query: Query, field: str) -> list[GroupCount]:
        check_fields(cls.KIND, [field])
        counts: dict[Any, int] = {}
        read = field_reader(cls.KIND, field)
        for record in self._matching(cls, query):
            value = read(record)
            counts[value] = counts.get(value, 0) + 1
        order = sort_order(cls.KIND, field)
        ranked = sorted(counts.items(), key=lambda item: order(item[0]))
        bound = group_count_bound(cls.KIND, field, query)
        if bound is None:
            return [GroupCount(value=v, count=n) for v, n in ranked]
        return [bounded_group(v, n, bound) for v, n in ranked]

    def timeline(self, ref: RecordRef) -> list[Activity]:
        found = [
            r
            for r in self._all(RecordKind.ACTIVITY)
            if isinstance(r, Activity) and r.regarding == ref
        ]
        found.sort(key=timeline_key)
        return [clone_record(r) for r in found]

    # --- due items ----------------------------------------------------------------------

    def _due_current(self, item_id: str) -> DueItem | None:
        if item_id in self._due_added:
            return self._due_added[item_id]
        if item_id in self._due_removed:
            return None
        return self._store._due.get(item_id)

    def _due_by_key(self, key: str) -> DueItem | None:
        added = self._due_added_keys.get(key)
        if added is not None:
            return self._due_added[added]
        item_id = self._store._due_keys.get(key)
        if item_id is None or item_id in self._due_removed or item_id in self._due_added:
            return None
        return self._store._due[item_id]

    def _due_delete(self, item_id: str) -> bool:
        if self._due_current(item_id) is None:
            return False
        added = self._due_added.pop(item_id, None)
        if added is not None and self._due_added_keys.get(added.key or "") == item_id:
            del self._due_added_keys[added.key or ""]
        if item_id in self._store._due:
            self._due_removed.add(item_id)
        return True

    def _add_due(self, item: DueItem) -> None:
        self._due_added[item.id] = item
        if item.key is not None:
            self._due_added_keys[item.key] = item.id

    def schedule(self, item: DueItem) -> DueItem:
        if not isinstance(item, DueItem):
            raise ValidationError(
                f"schedule() takes a DueItem, not {type(item).__name__}", field="item", value=item
            )
        if item.key is not None:
            existing = self._due_by_key(item.key)
            if existing is not None:
                return _copy_due(existing)
        if self._due_current(item.id) is not None:
            raise AlreadyExists("DueItem", item.id)
        self._add_due(_due_in(item))
        return item

    def cancel_due(self, item_id: str) -> bool:
        return self._due_delete(item_id)

    def cancel_due_by_key(self, key: str) -> bool:
        item = self._due_by_key(key)
        return item is not None and self._due_delete(item.id)

    def claim_due(self, now: datetime, limit: int) -> list[DueItem]:
        check_claim(now, limit)

        def eligible(item: DueItem) -> bool:
            return (
                item.id not in self._claimed
                and item.id not in self._due_removed
                and item.id not in self._due_added
            )

        found = self._store._due_in_order(now, limit, eligible)
        found.extend(
            item
            for item in self._due_added.values()
            if item.due_at <= now and item.id not in self._claimed
        )
        found.sort(key=lambda item: item.order_key)
        claimed = found[:limit]
        self._claimed.update(item.id for item in claimed)
        return [_copy_due(item) for item in claimed]

    def complete_due(self, item_id: str) -> bool:
        return self._due_delete(item_id)

    def replace_due(self, current: DueItem, new: DueItem | None) -> bool:
        if new is not None and (new.id != current.id or new.key != current.key):
            raise ValidationError(
                f"replace_due() keeps the item's id and key: {current.id!r}/{current.key!r} "
                f"cannot become {new.id!r}/{new.key!r}",
                field="new",
                value=new,
            )
        stored = self._due_current(current.id)
        if stored is None or stored.order_key != current.order_key:
            return False
        if stored.attempts != current.attempts:
            return False
        self._due_delete(current.id)
        if new is not None:
            self._add_due(_due_in(new))
        return True

    def next_due_at(self) -> datetime | None:
        def eligible(item: DueItem) -> bool:
            return item.id not in self._due_removed and item.id not in self._due_added

        first = self._store._due_in_order(None, 1, eligible)
        times = [item.due_at for item in first]
        times.extend(item.due_at for item in self._due_added.values())
        return min(times, default=None)

    def due_items(self, subject: RecordRef | None = None) -> list[DueItem]:
        items = [
            item
            for item_id, item in self._store._due.items()
            if item_id not in self._due_removed and item_id not in self._due_added
        ]
        items.extend(self._due_added.values())
        if subject is not None:
            items = [item for item in items if item.subject == subject]
        items.sort(key=lambda item: item.order_key)
        return [_copy_due(item) for item in items]

    def commit(self) -> None:
        # each kind of write only when the unit made some: many units write one kind
        store = self._store
        if self._outbox_added or self._outbox_removed:
            for entry_id in self._outbox_removed:
                store._outbox.pop(entry_id, None)
            store._outbox.update(self._outbox_added)
            self._outbox_added = {}
            self._outbox_removed = set()
        if self._states:
            store._states.update(self._states)
            self._states = {}
        if self._scores_removed:
            for lead_id, model_id in self._scores_removed:
                kept = [x for x in store._scores.get(lead_id, ()) if x.model_id != model_id]
                if kept:
                    store._scores[lead_id] = kept
                else:
                    store._scores.pop(lead_id, None)
            self._scores_removed = set()
        if self._scores:
            for score in self._scores:
                store._scores.setdefault(score.lead_id, []).append(score)
            self._scores = []
        if self._interactions:
            for interaction in self._interactions.values():
                store._store_interaction(interaction)
            self._interactions = {}
        if self._definitions:
            for definition in self._definitions.values():
                store._store_definition(definition)
            self._definitions = {}
        if self._enrollments:
            for enrollment in self._enrollments.values():
                store._store_enrollment(enrollment)
            self._enrollments = {}
            self._enrollments_by_record = {}
        if self._pending:
            for records in self._pending.values():
                for record in records.values():
                    store._store(record)
            self._pending = {}
            self._pending_index = {}
        if self._due_removed or self._due_added:
            for item_id in self._due_removed:
                store._drop_due(item_id)
            for item in self._due_added.values():
                store._drop_due(item.id)
                store._store_due(item)
            self._due_removed = set()
            self._due_added = {}
            self._due_added_keys = {}


def _converted(record: Record) -> bool:
    """A lead qualified into an opportunity, or a won opportunity."""
    status = getattr(record, "status", None)
    value = getattr(status, "value", status)
    if record.KIND is RecordKind.LEAD:
        return (
            value == "qualified" and getattr(record, "qualifying_opportunity_id", None) is not None
        )
    return bool(value == "won")
