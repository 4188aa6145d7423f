"""Scoring commands of `Salesflow`: publish models, keep every lead's scores current,
explain them.

A lead is re-scored under every active model in the unit of work that changes it:
when the lead, its parent contact or its parent account is written, and when an
interaction of the lead or the contact is recorded, or (with an account-target model
active) of any contact of its parent account. A score that changes is kept (the
history keeps every one) and published (`LeadScored`, `LeadGradeChanged`). When time
alone will change a score (an interaction leaving a rule's window), a due item (kind
``scoring.rescore``) re-scores the lead at that instant: no nightly batch. Only open
leads are scored; a closed lead keeps its last scores.

A lead is sales-ready from the first time any model's score of it reaches that
model's threshold, and stays so: a later drop of its scores does not undo it (the
reference's marketing qualification). That first time is kept in a state document
(kind `SALES_READY_STATE`, keyed by the lead id) and announced once, with
`LeadBecameSalesReady`.

Publishing a model re-scores every open lead, in pages of `_PAGE` leads in id order.
The publishing unit of work stores the model and re-scores the first page, so a small
store is fully re-scored when the command returns and a failed publication leaves
nothing behind. When more leads remain, the same unit schedules a ``scoring.rescore``
item keyed by the model version (the *sweep*) whose payload holds the id of the last
lead re-scored; `run_due` re-scores the next page in the unit that claimed the item
and hands the key on to an item for the page after. Each page commits on its own, so
a worker that dies loses at most its page, which the next claim redoes from the last
committed cursor. Re-scoring a lead again is harmless: an unchanged score adds no
history entry and publishes no event (`_keep`).

Deactivating a model deletes its scores when the marketing switch
``remove_stopped_model_scores`` is on (the default): the same way, a page in the
deactivating unit and the rest through keyed ``scoring.cleanup`` items.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from salesflow import events as ev
from salesflow.commands.core import EngineCore
from salesflow.commands.process import (
    CRITERIA_KEY,
    CRITERIA_STATE,
    SALES_READY_STATE,
    lead_is_sales_ready,
    marketing_settings_of,
    qualification_criteria_of,
)
from salesflow.commands.work import Work
from salesflow.conditions import Condition, all_of, any_of, field
from salesflow.definitions import ACTIVE, INACTIVE
from salesflow.due import DueItem
from salesflow.errors import AlreadyExists, NotFound, ValidationError
from salesflow.interactions import Interaction
from salesflow.lead import Lead
from salesflow.party import Account, Contact
from salesflow.scoring import (
    CompiledModel,
    NotScored,
    ScoreResult,
    ScoringModel,
    ScoringTarget,
    compile_model,
    from_dict,
    score,
    to_dict,
)
from salesflow.scoring_criteria import check_criteria, criteria_met
from salesflow.sequences.io import condition_to_dict
from salesflow.stores.base import Query
from salesflow.values import RecordKind

__all__ = [
    "CLEANUP_DUE",
    "RESCORE_DUE",
    "SALES_READY_STATE",
    "SCORING_MODEL",
    "ScoringCommands",
    "lead_is_sales_ready",
]

SCORING_MODEL = "scoring_model"
"""The definition kind of scoring models in the store."""

RESCORE_DUE = "scoring.rescore"
"""The due item kind that re-scores a lead when an interaction leaves a window, and
that carries on re-scoring every open lead after a model is published (the sweep)."""

CLEANUP_DUE = "scoring.cleanup"
"""The due item kind that deletes the next page of a stopped model's scores (see
`ScoringCommands.deactivate_scoring_model`)."""

_SCORED_KINDS = frozenset({RecordKind.LEAD, RecordKind.CONTACT, RecordKind.ACCOUNT})
"""The records a score depends on."""

_PAGE = 500
"""How many leads one unit of work re-scores: the publishing unit, each unit of
`rescore_all`, each batch of a publication's sweep. It bounds the leads held in memory
and how long a unit keeps SQLite's one writer (or PostgreSQL's row locks)."""

_PARENTS = 200
"""How many contact ids and account ids one query for their leads names (each kind):
a unit that writes many contacts asks in chunks, within every database's limit on
query parameters."""


def _rescore_key(lead_id: str) -> str:
    return f"score:{lead_id}"


def _cleanup_key(model_id: str, version: int) -> str:
    return f"scoring.cleanup:{model_id}:{version}"


def _sweep_key(model_id: str, version: int) -> str:
    # "scoring." never collides with a lead's "score:" key
    return f"scoring.publish:{model_id}:{version}"


class ScoringCommands(EngineCore):
    """Scoring models and the leads' scores."""

    _scoring_cache: dict[tuple[str, int], CompiledModel]

    # --- models ---------------------------------------------------------------------

    def publish_scoring_model(self, model: ScoringModel) -> ScoringModel:
        """Publish ``model`` as the next version of its id, active, and re-score every
        open lead with it.

        One unit of work stores the model and re-scores the first 500 open leads (by
        id), so it all happens or none of it does. Any further leads are re-scored by
        `run_due`, 500 per unit of work, through a ``scoring.rescore`` item due at once
        (see docs/scoring.md); a lead changed meanwhile is re-scored with the new
        version by that change, as usual.

        Returns:
            The published model (its ``version`` set).

        Raises:
            InvalidDefinition: the model has problems (`salesflow.scoring.validate`).
            ValidationError: ``model`` is not a `ScoringModel`.
        """
        if not isinstance(model, ScoringModel):
            raise ValidationError(
                f"publish_scoring_model() takes a ScoringModel, not {type(model).__name__}",
                field="model",
                value=model,
            )
        with self._command() as work:
            latest = work.uow.find_definition(SCORING_MODEL, model.id)
            version = 1 if latest is None else latest.version + 1
            published = attrs.evolve(model, version=version)
            compiled = compile_model(published)  # refuses an invalid model
            work.publish(SCORING_MODEL, model.id, version, to_dict(published))
            _, last = self._rescore_page(work, self._active_models(work, compiled), None)
            if last is not None:
                work.schedule_due(
                    RESCORE_DUE,
                    work.now,
                    payload={"model_id": model.id, "version": version, "after": last},
                    key=_sweep_key(model.id, version),
                )
        # cached only once committed: a failed unit may see this version number
        # published later with another document
        self._scoring_cache[(model.id, version)] = compiled
        return published

    def deactivate_scoring_model(self, model_id: str) -> None:
        """Stop scoring with a model.

        With the switch ``remove_stopped_model_scores`` on (the default, see
        `MarketingSettings`), the scores the model gave are deleted: the same unit of
        work removes those of the first 500 scored leads (by id), and `run_due`
        removes the rest, 500 leads per unit, through a ``scoring.cleanup`` item due
        at once. Publishing the model again stops that clean-up (the new version
        re-scores every lead). With the switch off, the scores stay in the history
        and count until the leads are scored again.

        Raises:
            NotFound: no such model.
        """
        with self._command() as work:
            latest = work.uow.find_definition(SCORING_MODEL, model_id)
            if latest is None:
                raise NotFound("ScoringModel", model_id)
            work.set_definition_state(SCORING_MODEL, model_id, latest.version, INACTIVE)
            if marketing_settings_of(work).remove_stopped_model_scores:
                self._clean_up_page(work, model_id, latest.version)

    def set_qualification_criteria(self, criteria: Condition | None) -> Condition | None:
        """Decide when a lead is sales-ready by a condition over its models' scores
        (``score.<model>``, ``grade.<model>``, ``ready.<model>``, combined with
        `all_of` / `any_of` / `not_`; see `salesflow.scoring_criteria`), or with None
        go back to "as soon as any model reaches its threshold".

        The criteria apply from now on, each time a lead is scored (`rescore_all`
        applies them to every open lead at once). A lead already sales-ready stays so.

        Returns:
            The criteria now in force.

        Raises:
            ValidationError: ``criteria`` is not a condition, or a field is not a fact
                of a published model's score.
        """
        with self._command() as work:
            if criteria is not None:
                published = {d.id for d in work.uow.definitions(SCORING_MODEL)}
                check_criteria(criteria, published)
            stored = work.uow.get_state(CRITERIA_STATE, CRITERIA_KEY)
            document = {
                "schema": 1,
                "criteria": None if criteria is None else condition_to_dict(criteria),
            }
            work.uow.put_state(
                CRITERIA_STATE,
                CRITERIA_KEY,
                document,
                expected_version=None if stored is None else stored.version,
                now=work.now,
            )
        return criteria

    def qualification_criteria(self) -> Condition | None:
        """The qualification criteria in force; None when any model reaching its
        threshold makes a lead sales-ready (`set_qualification_criteria`)."""
        with self._read() as uow:
            return qualification_criteria_of(uow)

    def _criteria(self, work: Work) -> Condition | None:
        """The unit's qualification criteria (read once per unit of work)."""
        if CRITERIA_STATE not in work.memo:
            work.memo[CRITERIA_STATE] = qualification_criteria_of(work.uow)
        criteria: Condition | None = work.memo[CRITERIA_STATE]
        return criteria

    def _clean_up_page(self, work: Work, model_id: str, version: int) -> None:
        """Delete the scores of stopped model ``model_id`` of one page of leads, and
        schedule the next page (the item is keyed by the model version)."""
        removed = work.uow.remove_model_scores(model_id, _PAGE)
        if len(removed) < _PAGE:
            return
        key = _cleanup_key(model_id, version)
        work.cancel_due_by_key(key)  # a claimed item still holds the key in its unit
        work.schedule_due(
            CLEANUP_DUE, work.now, payload={"model_id": model_id, "version": version}, key=key
        )

    def _cleanup_due(self, work: Work, item: DueItem) -> None:
        """Handler of ``scoring.cleanup`` items: the next page of a stopped model's
        clean-up, unless the model was published again meanwhile."""
        model_id, version = item.payload.get("model_id"), item.payload.get("version")
        if not isinstance(model_id, str) or not isinstance(version, int):
            return
        latest = work.uow.find_definition(SCORING_MODEL, model_id)
        if latest is None or latest.version != version or latest.state != INACTIVE:
            return  # a newer version scores again: its scores must stay
        self._clean_up_page(work, model_id, version)

    def scoring_models(self) -> list[ScoringModel]:
        """The latest version of every active scoring model, by id."""
        with self._read() as uow:
            stored = uow.definitions(SCORING_MODEL)
        return [from_dict(d.document) for d in stored if d.state == ACTIVE]

    def _active_models(
        self, work: Work, publishing: CompiledModel | None = None
    ) -> list[CompiledModel]:
        """The unit's active models, compiled; ``publishing`` is the model this unit
        publishes, used as is and not cached until the unit commits."""
        models = []
        for stored in work.uow.definitions(SCORING_MODEL):
            if stored.state != ACTIVE:
                continue
            key = (stored.id, stored.version)
            if publishing is not None and key == (publishing.model.id, publishing.model.version):
                models.append(publishing)
                continue
            compiled = self._scoring_cache.get(key)
            if compiled is None:
                # versions never change once stored, so the compiled model is kept
                compiled = self._scoring_cache[key] = compile_model(from_dict(stored.document))
            models.append(compiled)
        return models

    # --- scores ---------------------------------------------------------------------

    def rescore_all(self) -> int:
        """Re-score every open lead under every active model, a page of leads per unit
        of work. Returns how many leads were scored."""
        done = 0
        after: str | None = None
        while True:
            with self._command() as work:
                count, after = self._rescore_page(work, self._active_models(work), after)
            done += count
            if after is None:
                return done

    def _rescore_page(
        self, work: Work, models: list[CompiledModel], after: str | None
    ) -> tuple[int, str | None]:
        """Re-score the next `_PAGE` open leads whose id follows ``after`` (from the
        first when None).

        Pages follow the id, not an offset: a lead closed or created between two
        pages' units shifts no other lead past the cursor.

        Returns:
            How many leads the page held, and the id to continue after (None when
            no open lead follows).
        """
        where: Condition = field("status").eq("open")
        if after is not None:
            where = all_of(where, field("id").gt(after))
        page = work.uow.query(Lead, Query(where=where, limit=_PAGE))
        for lead in page.items:
            self._rescore(work, lead.id, models)
        last = page.items[-1].id if page.has_more and page.items else None
        return len(page.items), last

    def score_lead(self, lead_id: str) -> list[ScoreResult]:
        """Re-score one lead now (scores also follow every change by themselves).

        Returns:
            Its current scores, one per model that scores it.

        Raises:
            NotFound: no such lead.
        """
        with self._command() as work:
            work.get(Lead, lead_id)
            self._rescore(work, lead_id, self._active_models(work))
            return work.uow.scores(lead_id)

    def lead_scores(self, lead_id: str) -> list[ScoreResult]:
        """The lead's current score under each model (its explanation included)."""
        with self._read() as uow:
            uow.get(Lead, lead_id)
            return uow.scores(lead_id)

    def score_history(self, lead_id: str, model_id: str | None = None) -> list[ScoreResult]:
        """Every score the lead has had, oldest first."""
        with self._read() as uow:
            uow.get(Lead, lead_id)
            return uow.score_history(lead_id, model_id)

    def is_sales_ready(self, lead_id: str) -> bool:
        """Whether the lead is sales-ready: any model's score of it has reached that
        model's threshold, now or before. A later drop of the score does not undo it
        (each score's own ``sales_ready`` still says whether it reaches the threshold).

        Raises:
            NotFound: no such lead.
        """
        with self._read() as uow:
            uow.get(Lead, lead_id)
            return lead_is_sales_ready(uow, lead_id)

    # --- keeping scores current -----------------------------------------------------

    def _rescore(self, work: Work, lead_id: str, models: list[CompiledModel]) -> None:
        lead = work.uow.find(Lead, lead_id)
        if lead is None or not lead.is_open or not models:
            return
        contact = work.uow.find(Contact, lead.parent_contact_id) if lead.parent_contact_id else None
        account = work.uow.find(Account, lead.parent_account_id) if lead.parent_account_id else None
        current = {s.model_id: s for s in work.uow.scores(lead_id)}
        criteria = self._criteria(work)
        interactions: dict[ScoringTarget, list[Interaction]] = {}
        next_change = None
        latest = dict(current)
        crossed: ScoreResult | None = None
        for compiled in models:
            target = compiled.model.target
            if target not in interactions:
                interactions[target] = self._interactions_of(work, lead, contact, account, target)
            result = score(
                compiled,
                lead=lead,
                contact=contact,
                account=account,
                interactions=interactions[target],
                now=work.now,
            )
            if isinstance(result, NotScored):
                continue
            if result.next_change_at is not None and (
                next_change is None or result.next_change_at < next_change
            ):
                next_change = result.next_change_at
            before = current.get(result.model_id)
            self._keep(work, result, before)
            latest[result.model_id] = result
            if crossed is None and result.sales_ready and not (before and before.sales_ready):
                crossed = result
        # The rule in force decides on the lead's scores as they now stand, whatever
        # changed: a criteria change, or a model already at its threshold, counts too.
        if criteria is not None:
            if criteria_met(criteria, latest):
                self._mark_sales_ready(work, lead_id, None)
        else:
            ready = [s for s in latest.values() if s.sales_ready]
            if ready:
                self._mark_sales_ready(work, lead_id, crossed or ready[0])
        key = _rescore_key(lead_id)
        work.cancel_due_by_key(key)
        if next_change is not None:
            work.schedule_due(
                RESCORE_DUE, next_change, subject=lead.ref, payload={"lead_id": lead_id}, key=key
            )

    def _interactions_of(
        self,
        work: Work,
        lead: Lead,
        contact: Contact | None,
        account: Account | None,
        target: ScoringTarget,
    ) -> list[Interaction]:
        if target is ScoringTarget.ACCOUNT:
            if contact is not None:
                return []  # contact-based: no account model scores the lead
            if account is not None:
                return work.uow.interactions(account_id=account.id, lead_id=lead.id)
        return work.uow.interactions(
            contact_ids=() if contact is None else (contact.id,), lead_id=lead.id
        )

    def _keep(self, work: Work, result: ScoreResult, before: ScoreResult | None) -> None:
        """Store ``result`` when it differs from ``before`` and publish the change."""
        if before is not None and (
            before.model_version,
            before.points,
            before.grade,
            before.sales_ready,
            before.explanation,
        ) == (
            result.model_version,
            result.points,
            result.grade,
            result.sales_ready,
            result.explanation,
        ):
            return  # the same score: the history keeps changes only
        work.uow.add_score(result)
        now = work.now
        work.events.append(
            ev.LeadScored(
                occurred_at=now,
                lead_id=result.lead_id,
                model_id=result.model_id,
                points=result.points,
                previous_points=None if before is None else before.points,
            )
        )
        previous_grade = None if before is None else before.grade
        if result.grade != previous_grade:
            work.events.append(
                ev.LeadGradeChanged(
                    occurred_at=now,
                    lead_id=result.lead_id,
                    model_id=result.model_id,
                    grade=result.grade,
                    previous_grade=previous_grade,
                )
            )

    def _mark_sales_ready(self, work: Work, lead_id: str, result: ScoreResult | None) -> None:
        """Keep that the lead is sales-ready and announce it, the first time only: a
        lead marked before keeps its mark and is not announced again.

        ``result`` is the score that got it there (the one that crossed its model's
        threshold in this scoring, else one at its threshold), or None when the
        qualification criteria decided."""
        if work.uow.get_state(SALES_READY_STATE, lead_id) is not None:
            return
        document: dict[str, Any] = {
            "schema": 1,
            "since": work.now.isoformat(),
            "model_id": None if result is None else result.model_id,
            "model_version": None if result is None else result.model_version,
            "points": None if result is None else result.points,
        }
        try:
            work.uow.put_state(
                SALES_READY_STATE, lead_id, document, expected_version=None, now=work.now
            )
        except AlreadyExists:
            # a concurrent unit marked the lead first (SQL stores insert with ON
            # CONFLICT DO NOTHING, so this unit goes on): that one announced it
            return
        work.events.append(
            ev.LeadBecameSalesReady(
                occurred_at=work.now,
                lead_id=lead_id,
                model_id=None if result is None else result.model_id,
                points=None if result is None else result.points,
            )
        )

    def _rescore_due(self, work: Work, item: DueItem) -> None:
        """Handler of ``scoring.rescore`` items: an interaction left a window (the
        item names a lead), or the next page of a publication's sweep."""
        payload = item.payload
        lead_id = payload.get("lead_id")
        if isinstance(lead_id, str):
            self._rescore(work, lead_id, self._active_models(work))
            return
        model_id, version, after = (
            payload.get("model_id"),
            payload.get("version"),
            payload.get("after"),
        )
        if isinstance(model_id, str) and isinstance(version, int) and isinstance(after, str):
            self._sweep(work, model_id, version, after)

    def _sweep(self, work: Work, model_id: str, version: int, after: str) -> None:
        """Re-score the page after ``after`` for the publication of ``model_id``
        ``version``, and schedule the page after it under the same key."""
        latest = work.uow.find_definition(SCORING_MODEL, model_id)
        if latest is None or latest.version != version or latest.state != ACTIVE:
            return  # deactivated, or a newer version's own sweep re-scores every lead
        _, last = self._rescore_page(work, self._active_models(work), after)
        if last is None:
            return
        key = _sweep_key(model_id, version)
        # the claimed item still holds the key until the unit completes it
        work.cancel_due_by_key(key)
        work.schedule_due(
            RESCORE_DUE,
            work.now,  # behind what is already due: a long sweep does not starve it
            payload={"model_id": model_id, "version": version, "after": last},
            key=key,
        )

    def _leads_touched(self, work: Work, models: list[CompiledModel]) -> set[str]:
        """The leads whose scores the unit's writes and interactions may change: the
        leads written or named by an interaction, and the children of every contact
        and account written or whose contact acted. An interaction counts for its
        account's leads only when an account-target model is active (account models
        count the interactions of every contact of the account)."""
        leads: set[str] = set()
        contacts: set[str] = set()
        accounts: set[str] = set()
        for ref in work.written:
            if ref.kind is RecordKind.LEAD:
                leads.add(ref.id)
            elif ref.kind is RecordKind.CONTACT:
                contacts.add(ref.id)
            elif ref.kind is RecordKind.ACCOUNT:
                accounts.add(ref.id)
        by_account = any(m.model.target is ScoringTarget.ACCOUNT for m in models)
        for interaction in work.recorded:
            if interaction.lead_id is not None:
                leads.add(interaction.lead_id)
            if interaction.contact_id is not None:
                contacts.add(interaction.contact_id)
            if by_account and interaction.account_id is not None:
                accounts.add(interaction.account_id)
        leads.update(self._children(work, sorted(contacts), sorted(accounts)))
        return leads

    def _children(self, work: Work, contacts: list[str], accounts: list[str]) -> Iterable[str]:
        """The leads whose parent contact is one of ``contacts`` or whose parent account
        is one of ``accounts``: one query (a page of leads at a time) for up to
        `_PARENTS` of each, so a unit recording an interaction of a contact of an
        account asks the store once for both."""
        for start in range(0, max(len(contacts), len(accounts)), _PARENTS):
            tests: list[Condition] = [
                field(name).in_(chunk)
                for name, ids in (("parent_contact_id", contacts), ("parent_account_id", accounts))
                if (chunk := ids[start : start + _PARENTS])
            ]
            parents = tests[0] if len(tests) == 1 else any_of(*tests)
            after: str | None = None
            while True:
                where = parents if after is None else all_of(parents, field("id").gt(after))
                # not counted: a short page is the last one
                page = work.uow.query(Lead, Query(where=where, limit=_PAGE, count_limit=0))
                yield from (lead.id for lead in page.items)
                if len(page.items) < _PAGE:
                    break
                after = page.items[-1].id

    def _before_commit(self, work: Work) -> None:
        super()._before_commit(work)
        if not work.recorded and work.written_kinds.isdisjoint(_SCORED_KINDS):
            return  # nothing a score depends on was written (activities, opportunities)
        models = self._active_models(work)
        if not models:
            return
        for lead_id in sorted(self._leads_touched(work, models)):
            self._rescore(work, lead_id, models)
