"""Monte Carlo runs of a sequence: many simulated records, one `Funnel`.

`run_monte_carlo` connects ``records`` simulated records to a definition at
``start`` and walks each to its end with the same semantics as the pure runtime
(`salesflow.sequences.runtime`; its module docstring states them): waits and
condition limits on the owner's calendar with ``skip_non_working_time`` and
`RuntimeConfig.count_working_days`; conditions watching ``watches`` or the step
finished just before them; call conditions on `RuntimeConfig.answered`;
``advance_early``; a skipped watched step has no facts, so the no branch;
``exit_on_reply``; A/B variants from `~salesflow.sequences.runtime.variant_for`;
automated steps, ``set_status``, ``update_field`` and ``advance_to_sequence`` as
the runtime runs them. A `ResponseModel` says what sellers and customers do.

How the model is played, per record:

* A manual step becomes due when it is entered (with ``skip_non_working_time``, at
  the owner's next working time); the seller acts ``seller_delay``
  later and skips it with probability ``skip``, else completes it (a call with an
  outcome drawn from ``call_outcomes``).
* An email that is sent (a completed manual email, an automated email, an A/B
  test's variant) draws its customer events: *opened* with probability
  ``opened``; *replied*, *link_clicked* and *attachment_downloaded* each with
  their probability **per sent email**, and each implies *opened* (they are
  drawn given an open, with probability ``p / opened``, so each keeps its own
  rate; hence none may exceed ``opened``). Drawn events reach the enrollment
  ``event_delay`` after the email, in the order opened, replied, link clicked,
  attachment downloaded, and at an instant where the enrollment is also due,
  before it. Events are drawn only for emails something can observe (a condition
  watching the email, or ``exit_on_reply``).
* Field and stage conditions ask ``facts``: one `RecordFacts` for every record,
  a mapping of field values, or a sampler called once per record that needs them.
* An enrollment still running ``horizon`` after ``start`` (a sequence that loops
  through a wait) is stopped and counted as ``active``.

Record ``i`` (0-based) runs as enrollment ``mc-{i}`` (which fixes its A/B variant)
owned by ``owners[i % len(owners)]``. Randomness comes only from
``random.Random(seed)``: the same arguments give the same `Funnel`.

Speed (DESIGN §7): the definition is compiled once into integer-indexed tables
(`salesflow.testing.mc_tables.Tables`), time is kept in integer microseconds from
``start``, and each record is walked to its end before the next starts: enrollments
never interact in the runtime, so no global heap is needed; only a record's own
pending customer events wait in a small heap. Working-time calendars take a
slower, cached path. The model (`ResponseModel`) lives in `salesflow.testing.response`.
"""

from __future__ import annotations

import gc
import heapq
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from salesflow.clock import require_aware
from salesflow.errors import ValidationError
from salesflow.sequences.definition import (
    ConditionStep,
    EndStep,
    SequenceDefinition,
    StepKind,
    step_kind,
)
from salesflow.sequences.enrollment import RuntimeConfig
from salesflow.sequences.validation import require_valid
from salesflow.sequences.walk import DEFAULT_CONFIG, variant_for
from salesflow.testing.funnel import ACTIVE, Funnel, OutcomeTimes, StepFunnel, WorkloadStats
from salesflow.testing.mc_tables import (
    AUTO,
    BUCKET,
    CLICKED,
    COND,
    DOWNLOADED,
    MANUAL,
    REPLIED,
    SEND,
    US,
    V_ALL,
    V_ANY,
    V_CALL,
    V_CONST,
    WAIT,
    Tables,
    decide,
    fixed_zone,
)
from salesflow.testing.response import FactsSampler, ResponseModel
from salesflow.worktime import OrganizationCalendar

__all__ = ["enrollment_id", "run_monte_carlo"]

_CHUNK = 10_000  # records between progress reports


def enrollment_id(record: int) -> str:
    """The enrollment id record ``record`` (0-based) runs as; it fixes A/B variants."""
    return f"mc-{record}"


# --- the run ----------------------------------------------------------------------------


def run_monte_carlo(
    definition: SequenceDefinition,
    *,
    records: int,
    model: ResponseModel,
    seed: int,
    start: datetime,
    config: RuntimeConfig | None = None,
    owners: Sequence[str] = ("owner",),
    goal: str | None = None,
    horizon: timedelta = timedelta(days=365),
    progress: Callable[[int, int], None] | None = None,
) -> Funnel:
    """Connect ``records`` simulated records to ``definition`` at ``start`` and walk
    each to its end with ``model``; the funnel of what happened.

    Args:
        definition: A valid sequence definition.
        records: How many records to simulate (>= 1).
        model: What sellers and customers do.
        seed: Seeds `random.Random`; the same arguments give the same funnel.
        start: When every record is connected (aware).
        config: Calendars, working days, answered call outcomes; by default the
            runtime's (Monday–Friday 08:00–17:00 UTC, calendar days, "answered").
        owners: The sellers; record ``i`` belongs to ``owners[i % len(owners)]``.
        goal: The outcome counted as converted in the step table; by default the
            outcome of the definition's first end step.
        horizon: Enrollments still running this long after ``start`` stop as ``active``.
        progress: Called as ``progress(done, records)`` every 10,000 records and at
            the end (a progress bar).

    Returns:
        The `Funnel`.

    Raises:
        ValidationError: ``records``, ``owners``, ``horizon`` or ``goal`` is wrong,
            ``start`` is naive, the model names steps the definition lacks, or a
            field or stage condition has no facts.
        InvalidDefinition: The definition is not valid (see `validate`).
    """
    start = require_aware(start, "start").astimezone(UTC)
    if isinstance(records, bool) or not isinstance(records, int) or records < 1:
        raise ValidationError(
            f"records={records!r} must be a whole number >= 1", field="records", value=records
        )
    if isinstance(owners, str) or not owners or not all(isinstance(o, str) for o in owners):
        raise ValidationError(
            f"owners={owners!r} must be a non-empty sequence of owner ids",
            field="owners",
            value=owners,
        )
    if not isinstance(horizon, timedelta) or horizon <= timedelta(0):
        raise ValidationError(
            f"horizon={horizon!r} must be a positive timedelta", field="horizon", value=horizon
        )
    if not isinstance(model, ResponseModel):
        raise ValidationError(
            f"model={model!r} must be a ResponseModel", field="model", value=model
        )
    config = config or DEFAULT_CONFIG
    require_valid(definition)
    ends = [s.outcome for s in definition.steps if isinstance(s, EndStep)]
    if goal is None:
        goal = ends[0] if ends else None
    elif goal not in ends:
        raise ValidationError(
            f"goal={goal!r} is not an outcome of sequence {definition.id!r}; choose one of "
            f"{', '.join(sorted(set(ends))) or '(none)'}",
            field="goal",
            value=goal,
        )
    tables = Tables(definition, model, config)
    owner_list = list(owners)
    calendars = [config.calendars.for_owner(o) for o in owner_list]
    was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived tuples; nothing cyclic survives a record
    try:
        paths, load = _walk(
            tables, definition, model, config, calendars, records, seed, start, horizon, progress
        )
    finally:
        if was_enabled:
            gc.enable()
    return _funnel(
        tables, definition, records, seed, goal, paths, load, owner_list, calendars, start
    )


def _walk(
    c: Tables,
    definition: SequenceDefinition,
    model: ResponseModel,
    config: RuntimeConfig,
    calendars: list[OrganizationCalendar],
    records: int,
    seed: int,
    start: datetime,
    horizon: timedelta,
    progress: Callable[[int, int], None] | None,
) -> tuple[dict[tuple[int, int, int], int], dict[int, int]]:
    rng = random.Random(seed)
    draw = rng.random
    code, nxt, yes, no, delay, skip = c.code, c.nxt, c.yes, c.no, c.delay, c.skip
    calls, mails, end, vtype, vmask = c.calls, c.mails, c.end, c.vtype, c.vmask
    watch, early, zero, ab, kind_of = c.watch, c.early, c.zero, c.ab, c.kind_of
    n = c.n
    reach = [1 << i for i in range(n)]
    done = [1 << (n + i) for i in range(n)]
    declined = [1 << (2 * n + i) for i in range(n)]
    exit_on_reply = definition.exit_on_reply
    n_owners = len(calendars)
    n_kinds = max(len(c.manual_kinds), 1)
    base = (start - datetime(1970, 1, 1, tzinfo=UTC)) // US % BUCKET
    limit = horizon // US
    replied_out = c.outcomes.index("exited:customer_replied")
    completed_out = c.outcomes.index("completed")
    active_out = c.outcomes.index(ACTIVE)
    facts = model.facts
    fast = (
        not definition.skip_non_working_time
        and not config.count_working_days
        and all(fixed_zone(cal) for cal in calendars)
    )
    span_us = [s.delta // US for s in c.spans]
    cal_index = [calendars.index(cal) for cal in calendars]
    cache: dict[tuple[int, int, int], int] = {}

    def after(owner: int, t: int, span: int) -> int:
        key = (cal_index[owner], t, span)
        hit = cache.get(key)
        if hit is None:
            if len(cache) > 1_000_000:
                cache.clear()
            due = calendars[key[0]].schedule_after(
                start + timedelta(microseconds=t),
                c.spans[span],
                skip_non_working=definition.skip_non_working_time,
                count_working_days=config.count_working_days,
            )
            hit = cache[key] = (due - start) // US
        return hit

    skip_non_working = definition.skip_non_working_time
    openings: dict[tuple[int, int], int] = {}

    def opening(owner: int, t: int) -> int:
        """When a manual step entered at ``t`` is due: the owner's next working time."""
        key = (cal_index[owner], t)
        hit = openings.get(key)
        if hit is None:
            if len(openings) > 1_000_000:
                openings.clear()
            due = calendars[key[0]].next_working_time(start + timedelta(microseconds=t))
            hit = openings[key] = (due - start) // US
        return hit

    record_facts: list[Any] = [-1, None]

    def verdict(i: int, f: dict[int, int], last: int, record: int) -> bool:
        w = watch[i] if watch[i] >= 0 else last
        how = vtype[i]
        if how == V_CALL:
            return bool(f.get(-1 - w, -1) in vmask[i])
        if how == V_ANY:
            return bool(f.get(w, 0) & vmask[i])
        if how == V_ALL:
            return bool(f.get(w, 0) & vmask[i] == vmask[i])
        if how == V_CONST:
            return bool(vmask[i])
        if record_facts[0] != record:
            record_facts[0] = record
            record_facts[1] = cast(FactsSampler, facts)(record, rng)
        return decide(vmask[i], record_facts[1])

    paths: dict[tuple[int, int, int], int] = {}
    load: dict[int, int] = {}
    entry = c.entry
    cyclic = _has_cycle(definition)
    # Times of waits and limits in microseconds, when the calendar does not matter.
    span_of = [span_us[delay[i]] if code[i] in (WAIT, COND) else 0 for i in range(n)]
    f: dict[int, int] = {}
    pend: list[tuple[int, int, int, int]] = []
    for first in range(0, records, _CHUNK):
        if progress is not None and first:
            progress(first, records)
        for r in range(first, min(first + _CHUNK, records)):
            o = r % n_owners
            t = mask = seq = 0
            last = res = -1
            i = entry
            if f:
                f.clear()
            if pend:
                pend.clear()
            while True:
                if i < 0:
                    res = completed_out
                    break
                mask |= reach[i]
                k = code[i]
                if k == SEND:
                    mask |= done[i]
                    mail = mails[i]
                    step = ab[i]
                    if step is not None:
                        variant_b = variant_for(step, enrollment_id(r)) == "b"
                        if variant_b:
                            mask |= declined[i]
                        if mail is not None:
                            mail = mail[1] if variant_b else mail[0]
                    if cyclic:
                        f.pop(i, None)
                    if mail is not None and mail[0] and draw() < mail[0]:
                        seq = _events(pend, seq, t + mail[4], i, mail, draw)
                    last = i
                    i = nxt[i]
                    continue
                if k == MANUAL:
                    actionable = opening(o, t) if skip_non_working else t
                    due = actionable + delay[i]
                    key = ((actionable + base) // BUCKET * n_kinds + kind_of[i]) * n_owners + o
                    load[key] = load.get(key, 0) + 1
                    if cyclic:
                        f.pop(i, None)
                        f.pop(-1 - i, None)
                elif k == WAIT:
                    due = t + span_of[i] if fast else after(o, t, delay[i])
                elif k == COND:
                    if zero[i]:
                        decided = verdict(i, f, last, r)
                    elif early[i] and verdict(i, f, last, r):
                        decided = True
                    else:
                        decided = None
                    if decided is not None:
                        mask |= done[i] if decided else declined[i]
                        last = i
                        i = yes[i] if decided else no[i]
                        continue
                    due = t + span_of[i] if fast else after(o, t, delay[i])
                elif k == AUTO:
                    mask |= done[i]
                    last = i
                    i = nxt[i]
                    continue
                else:  # an end, or an advance to another sequence
                    res = end[i]
                    break
                if pend:
                    until = due if due < limit else limit
                    jumped = False
                    while pend and pend[0][0] <= until:
                        te, _, at, bit = heapq.heappop(pend)
                        f[at] = f.get(at, 0) | bit
                        if bit == REPLIED and exit_on_reply:
                            res = replied_out
                            t = te
                            break
                        if k == COND and early[i] and verdict(i, f, last, r):
                            t = te
                            mask |= done[i]
                            last = i
                            i = yes[i]
                            jumped = True
                            break
                    if res >= 0:
                        break
                    if jumped:
                        continue
                if due > limit:
                    res = active_out
                    t = limit
                    break
                t = due
                if k == MANUAL:
                    p = skip[i]
                    if p and draw() < p:
                        mask |= declined[i]
                    else:
                        mask |= done[i]
                        call = calls[i]
                        if call is not None:
                            u = draw() if len(call) > 1 else 0.0
                            for threshold, outcome in call:
                                if u < threshold:
                                    f[-1 - i] = outcome
                                    break
                        else:
                            mail = mails[i]
                            if mail is not None and mail[0] and draw() < mail[0]:
                                seq = _events(pend, seq, t + mail[4], i, mail, draw)
                    last = i
                    i = nxt[i]
                elif k == WAIT:
                    last = i
                    i = nxt[i]
                else:
                    if vtype[i] == V_CALL:
                        w = watch[i] if watch[i] >= 0 else last
                        decided = f.get(-1 - w, -1) in vmask[i]
                    else:
                        decided = verdict(i, f, last, r)
                    last = i
                    if decided:
                        mask |= done[i]
                        i = yes[i]
                    else:
                        mask |= declined[i]
                        i = no[i]
            key3 = (mask, res, t)
            paths[key3] = paths.get(key3, 0) + 1
    if progress is not None:
        progress(records, records)
    return paths, load


def _events(
    pend: list[tuple[int, int, int, int]],
    seq: int,
    at: int,
    step: int,
    mail: tuple[float, float, float, float, int],
    draw: Callable[[], float],
) -> int:
    """Queue the events of an opened email: the open, then each event given an open."""
    heapq.heappush(pend, (at, seq, step, 1))
    seq += 1
    for p, bit in ((mail[1], REPLIED), (mail[2], CLICKED), (mail[3], DOWNLOADED)):
        if p and (p >= 1 or draw() < p):
            heapq.heappush(pend, (at, seq, step, bit))
            seq += 1
    return seq


def _has_cycle(definition: SequenceDefinition) -> bool:
    by_id = definition.by_id
    state: dict[str, int] = {}

    def visit(sid: str) -> bool:
        state[sid] = 1
        step = by_id[sid]
        targets = (
            [step.yes, step.no]
            if isinstance(step, ConditionStep)
            else [getattr(step, "next", None)]
        )
        for target in targets:
            if target is None or target not in by_id:
                continue
            if state.get(target) == 1 or (target not in state and visit(target)):
                return True
        state[sid] = 2
        return False

    return visit(definition.entry)


# --- from counts to a funnel ------------------------------------------------------------


def _funnel(
    c: Tables,
    definition: SequenceDefinition,
    records: int,
    seed: int,
    goal: str | None,
    paths: Mapping[tuple[int, int, int], int],
    load: Mapping[int, int],
    owners: list[str],
    calendars: list[OrganizationCalendar],
    start: datetime,
) -> Funnel:
    n = c.n
    outcomes: dict[str, int] = {}
    per_outcome: dict[str, dict[int, int]] = {}
    reached, performed, declined = [0] * n, [0] * n, [0] * n
    ends: list[dict[str, int]] = [{} for _ in range(n)]
    entered = 0
    for (mask, res, t), count in paths.items():
        name = c.outcomes[res]
        outcomes[name] = outcomes.get(name, 0) + count
        spread = per_outcome.setdefault(name, {})
        spread[t] = spread.get(t, 0) + count
        entered += (mask & ((1 << n) - 1)).bit_count() * count
        for i in range(n):
            if mask >> i & 1:
                reached[i] += count
                performed[i] += count * (mask >> (n + i) & 1)
                declined[i] += count * (mask >> (2 * n + i) & 1)
                ends[i][name] = ends[i].get(name, 0) + count
    activities: dict[str, int] = {}
    steps = []
    for i, step in enumerate(definition.steps):
        kind = step_kind(step)
        is_activity = c.code[i] in (MANUAL, SEND) or kind is StepKind.AUTO_SMS
        if is_activity:
            activities[kind.value] = activities.get(kind.value, 0) + performed[i]
        steps.append(
            StepFunnel(
                step_id=step.id,
                kind=kind.value,
                reached=reached[i],
                performed=(
                    performed[i] - declined[i]  # an A/B test: variant A
                    if kind is StepKind.AB_TEST
                    else performed[i]
                    if is_activity or c.code[i] == COND
                    else 0
                ),
                declined=declined[i] if c.code[i] in (MANUAL, COND, SEND) else 0,
                outcomes=dict(sorted(ends[i].items())),
            )
        )
    times = {name: _times(spread) for name, spread in sorted(per_outcome.items())}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    floor = start - timedelta(microseconds=(start - epoch) // US % BUCKET)
    n_kinds = max(len(c.manual_kinds), 1)
    days: dict[tuple[int, int], dict[Any, int]] = {}
    for key, count in load.items():
        o = key % len(owners)
        k = key // len(owners) % n_kinds
        bucket = key // len(owners) // n_kinds
        local = (floor + timedelta(microseconds=bucket * BUCKET)).astimezone(calendars[o].timezone)
        per_day = days.setdefault((o, k), {})
        per_day[local.date()] = per_day.get(local.date(), 0) + count
    workload = tuple(
        WorkloadStats(
            owner_id=owners[o], kind=c.manual_kinds[k], per_day=dict(sorted(per_day.items()))
        )
        for (o, k), per_day in sorted(days.items(), key=lambda kv: (owners[kv[0][0]], kv[0][1]))
    )
    return Funnel(
        sequence_id=definition.id,
        sequence_version=definition.version,
        records=records,
        seed=seed,
        goal=goal,
        outcomes=dict(sorted(outcomes.items())),
        steps=tuple(steps),
        times=times,
        activities=dict(sorted(activities.items())),
        workload=workload,
        steps_entered=entered,
    )


def _times(spread: Mapping[int, int]) -> OutcomeTimes:
    total = sum(spread.values())
    ordered = sorted(spread.items())

    def rank(wanted: int) -> timedelta:
        seen = 0
        for value, count in ordered:
            seen += count
            if seen >= wanted:
                return timedelta(microseconds=value)
        return timedelta(microseconds=ordered[-1][0])

    # Nearest rank: the smallest value with at least that share at or below it.
    return OutcomeTimes(
        median=rank(max(1, -(-total // 2))),
        p90=rank(max(1, -(-total * 9 // 10))),
        longest=rank(total),
    )
