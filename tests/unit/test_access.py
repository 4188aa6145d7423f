"""Access control: actors, roles, the policy port, and the guard on every command.

Runs on the memory store, SQLite and (with ``SALESFLOW_PG_DSN``) PostgreSQL: the
scope of views and queries is a store condition, so every store must honour it.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow import Salesflow
from salesflow.access import (
    ROLES,
    SALES_MANAGER,
    SALESPERSON,
    SEQUENCE_MANAGER,
    SYSTEM,
    SYSTEM_ADMINISTRATOR,
    Actor,
    Depth,
    Privilege,
    Role,
    RolePolicy,
    Scope,
    SystemContext,
)
from salesflow.clock import FakeClock
from salesflow.commands.guards import GUARDS, UNGUARDED, Guard, install_guards
from salesflow.conditions import field
from salesflow.errors import PermissionDenied, SalesflowError, ValidationError
from salesflow.events import ListSink
from salesflow.lead import Lead
from salesflow.scoring import ScoringModel, ScoringRule
from salesflow.sequences import ActivityStep, EndStep, SequenceDefinition
from salesflow.stores.base import Query, Store
from salesflow.stores.url import open_store
from salesflow.testing import store_snapshot
from salesflow.values import RecordKind

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UNITS = {"ana": "east", "bo": "east", "team-east": "east", "cy": "west", "dee": "west"}

ANA = Actor(user_id="ana", roles={SALESPERSON}, teams={"team-east"}, business_unit="east")
BO = Actor(user_id="bo", roles={SALESPERSON}, business_unit="east")
MAX = Actor(user_id="max", roles={SALES_MANAGER}, business_unit="east")
ROOT = Actor(user_id="root", roles={SYSTEM_ADMINISTRATOR})


@pytest.fixture
def any_store(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    yield store
    store.close()


@pytest.fixture
def system(any_store: Store) -> Salesflow:
    return Salesflow(
        any_store, clock=FakeClock(T0), policy=RolePolicy(business_units=UNITS), sink=ListSink()
    )


def call_sequence(sequence_id: str = "calls") -> SequenceDefinition:
    return SequenceDefinition(
        id=sequence_id,
        name="Calls",
        record_type=RecordKind.LEAD,
        entry="call",
        steps=[
            ActivityStep(id="call", kind="call", subject="Call", next="end"),
            EndStep(id="end", outcome="called"),
        ],
    )


# --- the guard table ------------------------------------------------------------------


def test_every_public_method_of_the_engine_has_a_guard() -> None:
    public = {n for n in dir(Salesflow) if not n.startswith("_")}
    assert public - UNGUARDED == set(GUARDS)
    for name in GUARDS:
        assert getattr(Salesflow, name).__salesflow_guard__ is GUARDS[name]


def test_a_public_method_without_a_guard_is_refused_at_import() -> None:
    class Engine:
        def do_things(self) -> None:
            """Does things."""

    with pytest.raises(TypeError, match=r"without a guard: \['do_things'\]"):
        install_guards(Engine, {})
    with pytest.raises(TypeError, match=r"guards of no method: \['gone'\]"):
        install_guards(Engine, {"do_things": Guard(Privilege.READ), "gone": Guard(Privilege.READ)})


def test_the_engine_itself_runs_as_the_system() -> None:
    engine = Salesflow()
    assert engine.actor is SYSTEM
    assert isinstance(SYSTEM, SystemContext)
    assert not isinstance(SYSTEM, Actor)
    bound = engine.as_actor(ANA)
    assert bound.actor == ANA
    assert engine.actor is SYSTEM
    assert bound.store is engine.store
    with pytest.raises(PermissionDenied, match="call as_actor on the system engine"):
        bound.as_actor(ROOT)


# --- actors and policies --------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"user_id": "", "roles": {SALESPERSON}},
        {"user_id": " ana", "roles": {SALESPERSON}},
        {"user_id": "ana", "roles": "salesperson"},
        {"user_id": "ana", "roles": {SALESPERSON}, "teams": {""}},
        {"user_id": "ana", "roles": {SALESPERSON}, "business_unit": ""},
    ],
)
def test_a_malformed_actor_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Actor(**fields)  # type: ignore[arg-type]


def test_an_actor_with_an_unknown_role_is_refused_when_bound() -> None:
    with pytest.raises(ValidationError, match="roles this policy does not know: salesman"):
        Salesflow().as_actor(Actor(user_id="ana", roles={"salesman"}))
    with pytest.raises(ValidationError, match=r"must be a salesflow\.access\.Actor"):
        Salesflow().as_actor("ana")  # type: ignore[arg-type]


def test_the_standard_roles_reach_as_the_seeds_describe() -> None:
    policy = RolePolicy(business_units=UNITS)
    seller = policy.scope(ANA, Privilege.WRITE)
    assert seller == Scope(owners=frozenset({"ana", "team-east"}))
    manager = policy.scope(MAX, Privilege.WRITE)
    assert manager == Scope(owners=frozenset({"max", "ana", "bo", "team-east"}), unowned=True)
    assert policy.scope(ROOT, Privilege.WRITE).everything
    for manage in (Privilege.MANAGE_SEQUENCES, Privilege.MANAGE_SCORING, Privilege.MANAGE_ROUTING):
        assert policy.scope(ANA, manage).nothing
        assert policy.scope(MAX, manage).everything
        assert policy.scope(Actor(user_id="s", roles={SEQUENCE_MANAGER}), manage).everything
    assert policy.scope(MAX, Privilege.RUN_DUE).nothing
    assert policy.scope(ROOT, Privilege.RUN_DUE).everything


def test_the_widest_role_wins_and_hosts_add_their_own() -> None:
    auditor = Role("auditor", {Privilege.READ: Depth.ORGANIZATION})
    policy = RolePolicy(roles={**ROLES, "auditor": auditor})
    both = Actor(user_id="ana", roles={SALESPERSON, "auditor"})
    assert policy.scope(both, Privilege.READ).everything
    assert policy.scope(both, Privilege.WRITE) == Scope(owners=frozenset({"ana"}))
    with pytest.raises(ValidationError, match="must be a Role named 'x'"):
        RolePolicy(roles={"x": auditor})
    with pytest.raises(ValidationError, match="not a privilege and a depth"):
        Role("odd", {"fly": Depth.USER})


@pytest.mark.parametrize(
    "units",
    [
        {"east": ["ana", "bo"]},  # units to owners, the wrong way round
        {"ana": None},
        {"": "east"},
        {3: "east"},
        [("ana", "east")],
    ],
)
def test_business_units_that_are_not_owner_to_unit_text_are_refused(units: object) -> None:
    with pytest.raises(ValidationError, match="business_units") as refused:
        RolePolicy(business_units=units)  # type: ignore[arg-type]
    assert 'e.g. {"ana": "east"}' in str(refused.value)


def test_a_host_plugs_in_its_own_policy(system: Salesflow) -> None:
    class ReadOnly:
        def scope(self, actor: Actor, privilege: Privilege) -> Scope:
            return Scope(owners=None) if privilege is Privilege.READ else Scope(owners=frozenset())

    lead = system.create_lead(topic="T", last_name="L", owner_id="cy")
    engine = Salesflow(system.store, clock=system.clock, policy=ReadOnly())
    reader = engine.as_actor(Actor(user_id="zed", roles={"anything"}))
    assert reader.get_lead(lead.id).id == lead.id
    with pytest.raises(PermissionDenied) as refused:
        reader.update_lead(lead.id, topic="U")
    assert refused.value.privilege == "write"
    assert refused.value.actor == "zed"
    with pytest.raises(ValidationError, match=r"must implement salesflow\.access\.Policy"):
        Salesflow(policy=object())  # type: ignore[arg-type]


# --- record privileges ----------------------------------------------------------------


def test_a_salesperson_creates_records_they_own(system: Salesflow) -> None:
    ana = system.as_actor(ANA)
    lead = ana.create_lead(topic="10 laptops", last_name="Ruiz")
    assert lead.owner_id == "ana"
    team_lead = ana.create_lead(topic="T", last_name="L", owner_id="team-east")
    assert team_lead.owner_id == "team-east"
    before = store_snapshot(system.store)
    with pytest.raises(PermissionDenied, match="'create' privilege on the new record"):
        ana.create_lead(topic="T", last_name="L", owner_id="bo")
    with pytest.raises(PermissionDenied):
        ana.create_contact(last_name="L", owner_id=None)
    assert store_snapshot(system.store) == before


def test_a_salespersons_own_task_and_my_open_leads_need_no_user_id(system: Salesflow) -> None:
    ana = system.as_actor(ANA)
    lead = ana.create_lead(topic="10 laptops", last_name="Ruiz")
    task = ana.add_activity(lead, "task", "Send the brochure")
    assert task.owner_id == "ana"  # as create_lead: the actor's unless owner_id says
    assert [row.next_action.activity_id for row in ana.work_list()] == [task.id]
    delegated = ana.add_activity(lead, "task", "Check stock", owner_id="team-east")
    assert delegated.owner_id == "team-east"
    assert [found.id for found in ana.lead_view("my_open_leads").items] == [lead.id]
    assert ana.lead_view_counts("my_open_leads", "status")[0].count == 1
    with pytest.raises(ValidationError, match="needs user_id"):
        system.lead_view("my_open_leads")  # the system engine has no current user


def test_a_salesperson_changes_only_what_they_or_their_teams_own(system: Salesflow) -> None:
    sink = system.sink
    assert isinstance(sink, ListSink)
    own = system.create_lead(topic="Own", last_name="A", owner_id="ana")
    team = system.create_lead(topic="Team", last_name="T", owner_id="team-east")
    other = system.create_lead(topic="Other", last_name="B", owner_id="bo")
    ana = system.as_actor(ANA)
    assert ana.update_lead(own.id, topic="Own 2").topic == "Own 2"
    assert ana.disqualify_lead(team.id, "lost").status.value == "disqualified"
    published = len(sink.events)
    before = store_snapshot(system.store)
    for command in (
        lambda: ana.update_lead(other.id, topic="Mine now"),
        lambda: ana.qualify_lead(other.id),
        lambda: ana.disqualify_lead(other.id),
        lambda: ana.get_lead(other.id),
        lambda: ana.timeline(other.ref),
        lambda: ana.add_activity(other.ref, "task", "Steal"),
        lambda: ana.assign_lead(other.id, "ana"),
    ):
        with pytest.raises(PermissionDenied) as refused:
            command()
        assert refused.value.record == f"lead {other.id!r}"
        assert refused.value.actor == "ana"
    assert store_snapshot(system.store) == before
    assert len(sink.events) == published


def test_changing_the_owner_needs_the_assign_privilege_too(system: Salesflow) -> None:
    policy = RolePolicy(
        roles={
            **ROLES,
            "editor": Role("editor", {Privilege.WRITE: Depth.USER, Privilege.READ: Depth.USER}),
        }
    )
    engine = Salesflow(system.store, clock=system.clock, policy=policy)
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ed")
    editor = engine.as_actor(Actor(user_id="ed", roles={"editor"}))
    editor.update_lead(lead.id, topic="U")
    with pytest.raises(PermissionDenied, match="'assign' privilege"):
        editor.update_lead(lead.id, owner_id="bo")
    assert engine.get_lead(lead.id).owner_id == "ed"


def test_a_manager_reaches_their_business_unit_and_unowned_records(system: Salesflow) -> None:
    east = system.create_lead(topic="E", last_name="A", owner_id="bo")
    west = system.create_lead(topic="W", last_name="B", owner_id="cy")
    nobody = system.create_lead(topic="N", last_name="C")
    manager = system.as_actor(MAX)
    manager.update_lead(east.id, topic="E2")
    manager.assign_lead(nobody.id, "bo")
    with pytest.raises(PermissionDenied, match="owned by 'cy'"):
        manager.update_lead(west.id, topic="W2")
    assert system.get_lead(west.id).topic == "W"


def test_definitions_are_managed_by_managers_only(system: Salesflow) -> None:
    ana, manager = system.as_actor(ANA), system.as_actor(MAX)
    with pytest.raises(
        PermissionDenied, match="'manage_sequences' privilege that publish_sequence"
    ):
        ana.publish_sequence(call_sequence())
    points = ScoringRule(id="r", name="R", conditions=(field("topic").not_null(),), points=5)
    model = ScoringModel(id="m", name="Model", sales_ready_threshold=1, rules=(points,))
    with pytest.raises(PermissionDenied, match="manage_scoring"):
        ana.publish_scoring_model(model)
    with pytest.raises(PermissionDenied, match="run_due"):
        manager.run_due()
    published = manager.publish_sequence(call_sequence())
    assert [s.definition.id for s in ana.sequences()] == [published.definition.id]


def test_a_salesperson_works_sequences_on_their_own_records(system: Salesflow) -> None:
    system.publish_sequence(call_sequence())
    own = system.create_lead(topic="Own", last_name="A", owner_id="ana")
    other = system.create_lead(topic="Other", last_name="B", owner_id="bo")
    ana, bo = system.as_actor(ANA), system.as_actor(BO)
    enrollment = ana.connect(own.ref, "calls")
    with pytest.raises(PermissionDenied, match="'enroll'"):
        ana.connect(other.ref, "calls")
    with pytest.raises(PermissionDenied):
        ana.connect_many([own.ref, other.ref], "calls")
    theirs = bo.connect(other.ref, "calls")
    with pytest.raises(PermissionDenied):
        ana.complete_step(theirs.id, "call", outcome="answered")
    with pytest.raises(PermissionDenied):
        ana.up_next(theirs.id)
    assert ana.complete_step(enrollment.id, "call", outcome="answered").status.value == "completed"
    assert [e.id for e in ana.enrollments(own.ref)] == [enrollment.id]
    with pytest.raises(PermissionDenied, match="name the record"):
        ana.enrollments()
    assert {e.id for e in system.as_actor(ROOT).enrollments()} == {enrollment.id, theirs.id}


def test_a_salesperson_cannot_record_moves_as_someone_else(system: Salesflow) -> None:
    lead = system.create_lead(topic="Own", last_name="A", owner_id="ana")
    ana = system.as_actor(ANA)
    with pytest.raises(PermissionDenied, match="cannot act as 'bo'"):
        ana.start_process(lead.ref, "lead_to_opportunity", by="bo")


def test_a_generator_of_records_still_reaches_the_command_whole(system: Salesflow) -> None:
    system.publish_sequence(call_sequence())
    leads = [system.create_lead(topic=f"T{i}", last_name="L", owner_id="ana") for i in range(3)]
    enrollments = system.as_actor(ANA).connect_many((lead.ref for lead in leads), "calls")
    assert len(enrollments) == 3
    with pytest.raises(ValidationError, match="must be a list"):
        system.as_actor(MAX).route_leads("lead-1")


# --- views and queries ----------------------------------------------------------------


def test_views_and_queries_list_only_what_the_actor_reaches(system: Salesflow) -> None:
    for owner in ("ana", "ana", "team-east", "bo", "cy", None):
        system.create_lead(topic="T", last_name="L", owner_id=owner)
    ana, manager, root = system.as_actor(ANA), system.as_actor(MAX), system.as_actor(ROOT)
    assert ana.lead_view("all_leads").total == 3
    assert {lead.owner_id for lead in ana.lead_view("open_leads").items} == {"ana", "team-east"}
    assert manager.lead_view("all_leads").total == 5  # east owners and the unowned lead
    assert root.lead_view("all_leads").total == 6
    counts = {g.value: g.count for g in ana.lead_view_counts("all_leads", "owner_id")}
    assert counts == {"ana": 2, "team-east": 1}
    page = ana.query(Lead, Query(where=field("topic").eq("T")))
    assert page.total == 3
    assert ana.query(Lead, Query()).total == 3


OWNERS = ["ana", "bo", "team-east", "cy", "dee", None]


COMMANDS: dict[str, Callable[[Salesflow, Lead], object]] = {
    "update": lambda engine, lead: engine.update_lead(lead.id, topic="Changed"),
    "disqualify": lambda engine, lead: engine.disqualify_lead(lead.id),
    "qualify": lambda engine, lead: engine.qualify_lead(lead.id),
    "contacted": lambda engine, lead: engine.mark_lead_contacted(lead.id),
    "assign": lambda engine, lead: engine.assign_lead(lead.id, "dee"),
    "activity": lambda engine, lead: engine.add_activity(lead.ref, "task", "Call back"),
    "connect": lambda engine, lead: engine.connect(lead.ref, "calls"),
    "timeline": lambda engine, lead: engine.timeline(lead.ref),
    "scores": lambda engine, lead: engine.lead_scores(lead.id),
}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    owners=st.lists(st.sampled_from(OWNERS), min_size=1, max_size=8),
    actor=st.sampled_from([ANA, BO, MAX, ROOT]),
    commands=st.lists(st.sampled_from(sorted(COMMANDS)), min_size=1, max_size=8),
)
def test_an_actor_may_act_on_a_record_exactly_when_they_can_see_it(
    owners: list[str | None], actor: Actor, commands: list[str]
) -> None:
    system = Salesflow(clock=FakeClock(T0), policy=RolePolicy(business_units=UNITS))
    system.publish_sequence(call_sequence())
    leads = [system.create_lead(topic="T", last_name="L", owner_id=o) for o in owners]
    bound = system.as_actor(actor)
    reach = system.policy.scope(actor, Privilege.READ)
    visible = {lead.id for lead in bound.lead_view("all_leads", page_size=100).items}
    assert visible == {lead.id for lead in leads if reach.allows(lead.owner_id)}
    for name, lead in zip(commands, itertools.cycle(leads), strict=False):
        current = system.get_lead(lead.id)  # an earlier command may have reassigned it
        allowed = reach.allows(current.owner_id)  # the standard roles reach alike per record
        before = store_snapshot(system.store)
        outcome = "done"
        try:
            COMMANDS[name](bound, current)
        except PermissionDenied:
            outcome = "refused"
        except SalesflowError:
            outcome = "other"  # refused for another reason (a closed lead, connected twice)
        if not allowed:  # refused first, before any other check of the command
            assert outcome == "refused", name
            assert store_snapshot(system.store) == before
        else:
            assert outcome != "refused", name


def test_the_check_reads_in_the_commands_own_unit_of_work(system: Salesflow) -> None:
    lead = system.create_lead(topic="Own", last_name="A", owner_id="ana")
    opened: list[int] = []
    store = system.store
    original = store.unit_of_work

    def counting() -> object:
        opened.append(1)
        return original()

    store.unit_of_work = counting  # type: ignore[method-assign]
    try:
        system.as_actor(ANA).update_lead(lead.id, topic="Own 2")
    finally:
        store.unit_of_work = original  # type: ignore[method-assign]
    assert len(opened) == 1


def test_a_command_an_event_sink_runs_during_another_is_checked_too() -> None:
    refused: list[PermissionDenied] = []
    engines: list[Salesflow] = []

    class Meddler:
        def publish(self, events: object) -> None:
            if engines:
                try:
                    engines[0].update_lead(other.id, topic="Mine")
                except PermissionDenied as error:
                    refused.append(error)

    system = Salesflow(clock=FakeClock(T0), sink=Meddler(), policy=RolePolicy())
    other = system.create_lead(topic="Other", last_name="B", owner_id="bo")
    own = system.create_lead(topic="Own", last_name="A", owner_id="ana")
    engines.append(system.as_actor(ANA))
    engines[0].update_lead(own.id, topic="Own 2")
    assert len(refused) == 1
    assert system.get_lead(other.id).topic == "Other"


def test_the_security_page_lists_the_privilege_of_every_command() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    documented: dict[str, str] = {}
    for line in page.splitlines():
        if line.startswith("| `") and "` | `" in line:
            privilege, commands = line.strip("| ").split(" | ", 1)
            for name in commands.rstrip(" |").split(", "):
                documented[name.strip("`")] = privilege.strip("`")
    assert documented == {name: guard.privilege.value for name, guard in GUARDS.items()}


def test_reports_count_only_what_the_actor_reaches(system: Salesflow) -> None:
    for owner in ("ana", "ana", "team-east", "bo", "cy", None):
        system.create_lead(topic="T", last_name="L", owner_id=owner, source="web")
    ana, manager = system.as_actor(ANA), system.as_actor(MAX)
    by_owner = {row[0]: row[1] for row in ana.report("conversion_by_owner").rows}
    assert by_owner == {"ana": 2, "team-east": 1}
    sources = {row[0]: row[1] for row in manager.report("lead_sources").rows}
    assert sources == {"web": 5, "all": 5}  # east owners and the unowned lead
    assert {row[0]: row[1] for row in system.report("lead_sources").rows}["all"] == 6


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("create_lead", (), {"topic": "T", "owner_id": "ana"}),
        ("update_lead", ("L1",), {"topic": "T", "expected_version": 2}),
        ("connect_many", ([1, 2], "calls"), {"owner_id": "ana"}),
        ("connect_many", (), {"records": [1], "sequence_id": "calls"}),
        ("get", (Lead, "L1"), {}),
        ("start_process", ("ref", "flow"), {"by": "ana"}),
        ("work_list", (), {}),
    ],
)
def test_the_guard_names_arguments_as_python_binds_them(
    name: str, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    from salesflow.commands.guards import _Binder

    method = getattr(Salesflow, name).__wrapped__
    binder = _Binder(method)
    expected = dict(inspect.signature(method).bind(None, *args, **kwargs).arguments)
    del expected["self"]
    if binder.rest is not None:
        expected.setdefault(binder.rest, {})
    assert binder.bind(args, kwargs) == expected


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("update_lead", (), {"topic": "T"}),  # the required lead id is missing
        ("update_lead", ("L1", "L2"), {}),  # too many positional arguments
        ("get", (Lead,), {"cls": Lead, "record_id": "L1"}),  # cls given twice
        ("work_list", (), {"colour": "red"}),  # no such parameter
    ],
)
def test_a_call_that_does_not_fit_is_left_to_the_method(
    name: str, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    from salesflow.commands.guards import _Binder

    method = getattr(Salesflow, name).__wrapped__
    with pytest.raises(TypeError):
        inspect.signature(method).bind(None, *args, **kwargs)
    assert _Binder(method).bind(args, kwargs) is None
    with pytest.raises(TypeError):
        getattr(Salesflow().as_actor(ROOT), name)(*args, **kwargs)


@settings(max_examples=200, deadline=None)
@given(
    user_id=st.one_of(st.text(max_size=5), st.integers(), st.none()),
    roles=st.one_of(st.text(max_size=5), st.lists(st.one_of(st.text(max_size=8), st.integers()))),
    teams=st.one_of(st.none(), st.lists(st.text(max_size=3)), st.integers()),
)
def test_any_actor_input_is_an_actor_or_a_validation_error(
    user_id: object, roles: object, teams: object
) -> None:
    fields: dict[str, object] = {"user_id": user_id, "roles": roles}
    if teams is not None:
        fields["teams"] = teams
    message = ""
    try:
        actor = Actor(**fields)  # type: ignore[arg-type]
        bound = Salesflow().as_actor(actor)
    except ValidationError as refused:
        message = str(refused)
    if message:
        assert "ids" in message or "does not know" in message or "collection" in message
    else:
        assert bound.actor == actor


def test_sequence_success_and_the_work_list_keep_to_the_actors_reach(system: Salesflow) -> None:
    system.publish_sequence(call_sequence())
    own = system.create_lead(topic="Own", last_name="A", owner_id="ana")
    other = system.create_lead(topic="Other", last_name="B", owner_id="bo")
    west = system.create_lead(topic="West", last_name="C", owner_id="cy")
    system.connect_many([own.ref, other.ref, west.ref], "calls")
    assert isinstance(system.clock, FakeClock)
    system.clock.advance(timedelta(hours=1))  # the report's periods end before now
    ana, manager = system.as_actor(ANA), system.as_actor(MAX)

    def connected(engine: Salesflow) -> int:
        rows = engine.report("sequence_success").rows
        return next(row[3] for row in rows if row[0] == "lead" and row[2] == 30)

    assert (connected(ana), connected(manager), connected(system)) == (1, 2, 3)
    assert {row.record.id for row in ana.work_list()} == {own.id}
    assert {row.record.id for row in manager.work_list()} == {own.id, other.id}
    assert len(system.work_list()) == 3
