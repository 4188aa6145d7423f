"""Two engines routing leads into one database at the same time: the round-robin
turns are handed out once each, in order, and no assignment is lost.

Each thread has its own engine and store connection, as two worker processes would.
A routing unit reads the policy's routing state and writes the next version with the
assignments it decided; when the other engine wrote first, the unit fails with
`VersionConflict` and changes nothing, and the caller routes that lead again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from salesflow.clock import FakeClock
from salesflow.conditions import field
from salesflow.engine import Salesflow
from salesflow.errors import VersionConflict
from salesflow.lead import Lead
from salesflow.routing_policy import Member, RoundRobin, RoutingPolicy, RoutingRule, Team
from salesflow.stores.base import Query, Store
from salesflow.stores.url import open_store

MONDAY = datetime(2026, 3, 2, 9, tzinfo=UTC)
MEMBERS = ("ana", "jonas", "rita")
PER_THREAD = 60


@pytest.fixture(params=["sqlite", "postgres"])
def opener(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: Callable[[str], str]
) -> Callable[[], Store]:
    url = (
        f"sqlite:///{tmp_path / 'routing.db'}"
        if request.param == "sqlite"
        else postgres_url("routing")
    )
    return lambda: open_store(url)


def test_concurrent_routing_hands_out_each_turn_once(opener: Callable[[], Store]) -> None:
    setup = Salesflow(opener(), clock=FakeClock(MONDAY))
    setup.save_team(Team(id="team", name="Team", members=[Member(user_id=m) for m in MEMBERS]))
    setup.publish_routing_policy(
        RoutingPolicy(
            id="default",
            name="Default",
            fallback_owner_id="manager",
            rules=[RoutingRule(id="all", name="All", target=RoundRobin(team_id="team"))],
        )
    )
    batches = [
        [setup.create_lead(topic=f"{t}-{i}", last_name="Kim").id for i in range(PER_THREAD)]
        for t in range(2)
    ]
    setup.close()
    conflicts = Counter[int]()
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def route(thread: int) -> None:
        engine = Salesflow(opener(), clock=FakeClock(MONDAY))
        try:
            start.wait()
            for lead_id in batches[thread]:
                while True:
                    try:
                        engine.route_lead(lead_id)
                        break
                    except VersionConflict:
                        conflicts[thread] += 1
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            engine.close()

    threads = [threading.Thread(target=route, args=(t,)) for t in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    check = Salesflow(opener(), clock=FakeClock(MONDAY))
    leads = check.query(Lead, Query(where=field("owner_id").not_null(), limit=1000)).items
    owners = Counter(lead.owner_id for lead in leads)
    assert sum(owners.values()) == 2 * PER_THREAD  # every lead routed, none lost
    # one turn each, in rotation: the counts differ by at most one
    assert set(owners) == set(MEMBERS)
    assert max(owners.values()) - min(owners.values()) <= 1
    state = check.routing_state()
    last = state.rotations["team"].last
    assert last == MEMBERS[(2 * PER_THREAD - 1) % len(MEMBERS)]
    check.close()
