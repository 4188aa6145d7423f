"""salesflow: the lead-management and sales-engagement engine of a CRM.

Create a `Salesflow` engine on a store, then drive it with commands::

    from salesflow import Salesflow, open_store
    engine = Salesflow(open_store("sqlite:///crm.db"))
    lead = engine.create_lead(topic="10 laptops", last_name="Ruiz", company_name="Contoso")
    engine.qualify_lead(lead.id)

Everything importable from here is the public API, together with the
subpackages ``salesflow.stores``, ``salesflow.conditions`` (the predicate
language) and ``salesflow.testing`` (fake clock, strategies, store contract);
other submodules are private.
"""

from __future__ import annotations

from salesflow.activity import Activity, ActivityKind, ActivityState, LinkedInAction
from salesflow.clock import Clock, FakeClock, SystemClock
from salesflow.conditions import Condition, all_of, any_of, field, not_
from salesflow.due import DueItem, DueItemFailed, RetryPolicy
from salesflow.engine import IdFactory, Salesflow
from salesflow.errors import (
    AlreadyExists,
    InvalidDefinition,
    InvalidTransition,
    NotFound,
    SalesflowError,
    StoreError,
    ValidationError,
    VersionConflict,
)
from salesflow.events import Event, EventSink, ListSink, NullSink
from salesflow.fields import (
    AccountFields,
    ActivityFields,
    ContactFields,
    LeadFields,
    OpportunityFields,
)
from salesflow.lead import (
    Budget,
    Lead,
    LeadLifecycle,
    LeadSource,
    LeadStatus,
    LeadStatusReason,
    Need,
    PurchaseProcess,
    PurchaseTimeframe,
    Rating,
    StatusReasons,
)
from salesflow.opportunity import Opportunity, OpportunityLifecycle, OpportunityStatus
from salesflow.party import Account, Competitor, Contact, Stakeholder
from salesflow.qualification import Qualification, QualifyOptions
from salesflow.stores import (
    Codec,
    GroupCount,
    MemoryStore,
    Page,
    PostgresStore,
    Query,
    SortKey,
    SQLiteStore,
    Store,
    UnitOfWork,
    open_store,
)
from salesflow.values import CustomValue, Money, OwnerType, RecordKind, RecordRef
from salesflow.views import LeadView, ViewResult
from salesflow.worktime import Calendars, DaysAndHours, OrganizationCalendar

__version__ = "0.1.0"

__all__ = [
    "Account",
    "AccountFields",
    "Activity",
    "ActivityFields",
    "ActivityKind",
    "ActivityState",
    "AlreadyExists",
    "Budget",
    "Calendars",
    "Clock",
    "Codec",
    "Competitor",
    "Condition",
    "Contact",
    "ContactFields",
    "CustomValue",
    "DaysAndHours",
    "DueItem",
    "DueItemFailed",
    "Event",
    "EventSink",
    "FakeClock",
    "GroupCount",
    "IdFactory",
    "InvalidDefinition",
    "InvalidTransition",
    "Lead",
    "LeadFields",
    "LeadLifecycle",
    "LeadSource",
    "LeadStatus",
    "LeadStatusReason",
    "LeadView",
    "LinkedInAction",
    "ListSink",
    "MemoryStore",
    "Money",
    "Need",
    "NotFound",
    "NullSink",
    "Opportunity",
    "OpportunityFields",
    "OpportunityLifecycle",
    "OpportunityStatus",
    "OrganizationCalendar",
    "OwnerType",
    "Page",
    "PostgresStore",
    "PurchaseProcess",
    "PurchaseTimeframe",
    "Qualification",
    "QualifyOptions",
    "Query",
    "Rating",
    "RecordKind",
    "RecordRef",
    "RetryPolicy",
    "SQLiteStore",
    "Salesflow",
    "SalesflowError",
    "SortKey",
    "Stakeholder",
    "StatusReasons",
    "Store",
    "StoreError",
    "SystemClock",
    "UnitOfWork",
    "ValidationError",
    "VersionConflict",
    "ViewResult",
    "all_of",
    "any_of",
    "field",
    "not_",
    "open_store",
]
