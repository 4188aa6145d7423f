"""Intake properties: the same submission twice creates nothing new, and matching
does not care how an email or a name is written."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.intake import IntakeOptions, RecordAction, Submission
from salesflow.matching import MatchField, MatchingStrategy, Normalizer, normalize
from salesflow.party import Contact
from salesflow.stores.base import Query

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)

local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=12)
emails = st.builds(lambda user, host: f"{user}@{host}.example", local, local)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzáéíóúüšžąęł ", min_size=1, max_size=20).filter(
    lambda n: n.strip()
)
channels = st.sampled_from(["typed", "csv", "landing_page", "event", "linkedin_form"])


def new_engine() -> Salesflow:
    ids = itertools.count(1)
    return Salesflow(clock=FakeClock(T0), ids=lambda kind: f"{kind.value}-{next(ids)}")


def messy(text: str, draw: st.DrawFn) -> str:
    """The same text as a person might type it: other case, spaces around."""
    cased = "".join(c.upper() if draw(st.booleans()) else c for c in text)
    return " " * draw(st.integers(0, 2)) + cased + " " * draw(st.integers(0, 2))


@st.composite
def submissions(draw: st.DrawFn) -> Submission:
    fields = {"email": draw(emails), "last_name": draw(names)}
    if draw(st.booleans()):
        fields["company_name"] = draw(names)
    return Submission(
        channel=draw(channels),
        form_id=draw(st.sampled_from([None, "form-a", "form-b"])),
        fields=fields,
        id=draw(st.sampled_from([None, "sub-1", "sub-2"])),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(submissions(), min_size=1, max_size=6), st.booleans())
def test_repeating_submissions_creates_nothing_new(
    batch: list[Submission], with_contacts: bool
) -> None:
    engine = new_engine()
    options = IntakeOptions(create_contact=with_contacts)
    for submission in batch:
        engine.intake(submission, options)
    leads = engine.lead_view("all_leads", page_size=100).items
    contacts = engine.query(Contact, Query(limit=100)).items
    interactions = {i.id for lead in leads for i in engine.interactions(lead_id=lead.id)} | {
        i.id for c in contacts for i in engine.interactions(contact_id=c.id)
    }
    for submission in batch:
        # replayed later: it may update what another submission of the batch changed
        # (the same person, other values), but it creates nothing
        later = engine.intake(submission, options)
        assert later.lead_action is not RecordAction.CREATED
        assert later.contact_action is not RecordAction.CREATED
        assert later.interaction is None
        # repeated at once: nothing at all changes
        again = engine.intake(submission, options)
        assert again.lead_action in (RecordAction.UNCHANGED, RecordAction.NONE)
        assert again.contact_action in (RecordAction.UNCHANGED, RecordAction.NONE)
        assert again.interaction is None
    ids = [lead.id for lead in engine.lead_view("all_leads", page_size=100).items]
    assert ids == [lead.id for lead in leads]
    assert [c.id for c in engine.query(Contact, Query(limit=100)).items] == [c.id for c in contacts]
    after = {i.id for lead in leads for i in engine.interactions(lead_id=lead.id)} | {
        i.id for c in contacts for i in engine.interactions(contact_id=c.id)
    }
    assert after == interactions


@settings(max_examples=60, deadline=None)
@given(st.data(), emails, names)
def test_matching_ignores_how_the_email_and_name_are_written(
    data: st.DataObject, email: str, name: str
) -> None:
    engine = new_engine()
    engine.save_matching_strategy(
        MatchingStrategy(
            id="email_name",
            target="contact",
            fields=[
                MatchField(name="email", normalizer="email"),
                MatchField(name="last_name", normalizer="name"),
            ],
            default=True,
        )
    )
    contact = engine.create_contact(last_name=name, email=email)
    typed_email = messy(email, data.draw)
    typed_name = messy(name, data.draw)
    assert normalize(Normalizer.NAME, typed_name) == normalize(Normalizer.NAME, name)
    result = engine.intake(
        Submission(channel="typed", fields={"email": typed_email, "last_name": typed_name}),
        IntakeOptions(update_matched=False),
    )
    assert result.contact is not None
    assert result.contact.id == contact.id
