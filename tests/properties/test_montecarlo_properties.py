"""Monte Carlo runs over random valid sequence graphs.

Graphs come from the strategy of ``test_sequence_graphs`` (acyclic, with email,
call and field conditions, A/B tests, status changes, advances and ends); the
response model is drawn too. When the seller acts at once, what holds:

* every record ends in exactly one outcome, and none is left running;
* no enrollment takes longer than ``stats().longest``;
* the step table is consistent: every record enters the entry step, a condition's
  yes and no add up to at most its reach, nothing is performed more than reached;
* the same seed gives the same funnel.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from test_sequence_graphs import valid_definitions

from salesflow.sequences.definition import SequenceDefinition
from salesflow.sequences.enrollment import RecordFacts, StaticFacts
from salesflow.sequences.validation import stats
from salesflow.testing import ResponseModel, run_monte_carlo
from salesflow.testing.funnel import ACTIVE

T0 = datetime(2024, 3, 4, 9, tzinfo=UTC)


def rating(record: int, rng: random.Random) -> RecordFacts:
    """Half the records are hot."""
    return StaticFacts(fields={"rating": "hot" if rng.random() < 0.5 else "cold"})


@st.composite
def models(draw: st.DrawFn) -> ResponseModel:
    """A response model whose seller acts the moment a step is due."""
    share = st.sampled_from([0.0, 0.3, 0.5, 1.0])
    opened = draw(share)
    answered = draw(share)
    return ResponseModel(
        opened=opened,
        replied=opened * draw(share),
        link_clicked=opened * draw(share),
        event_delay=timedelta(hours=draw(st.integers(0, 80))),
        call_outcomes={"answered": answered, "no_answer": 1 - answered},
        skip=draw(share),
        facts=rating,
    )


@settings(max_examples=150, deadline=None)
@given(definition=valid_definitions(), model=models(), exit_on_reply=st.booleans())
def test_every_record_ends_once_and_never_after_the_longest_path(
    definition: SequenceDefinition, model: ResponseModel, exit_on_reply: bool
) -> None:
    definition = SequenceDefinition(
        id=definition.id,
        name=definition.name,
        record_type=definition.record_type,
        entry=definition.entry,
        steps=definition.steps,
        exit_on_reply=exit_on_reply,
    )
    funnel = run_monte_carlo(definition, records=60, model=model, seed=4, start=T0)
    assert sum(funnel.outcomes.values()) == 60
    assert ACTIVE not in funnel.outcomes
    longest = stats(definition).longest
    assert all(times.longest <= longest for times in funnel.times.values())
    by_id = {row.step_id: row for row in funnel.steps}
    assert by_id[definition.entry].reached == 60
    for row in funnel.steps:
        assert 0 <= row.performed <= row.reached
        assert row.performed + row.declined <= row.reached
        assert sum(row.outcomes.values()) == row.reached
    again = run_monte_carlo(definition, records=60, model=model, seed=4, start=T0)
    assert again == funnel
