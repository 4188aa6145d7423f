"""Any valid lead survives the codec and every embedded store exactly."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings

from salesflow import Lead
from salesflow.stores.codec import Codec
from salesflow.stores.memory import MemoryStore
from salesflow.stores.sqlite import SQLiteStore
from salesflow.testing.strategies import leads


@given(leads())
def test_the_codec_round_trips_every_lead_through_json(lead: Lead) -> None:
    codec = Codec()
    document = json.loads(json.dumps(codec.encode(lead)))
    assert codec.decode_as(Lead, document) == lead


@settings(max_examples=40, deadline=None)
@given(lead=leads())
def test_every_store_gives_back_what_it_was_given(lead: Lead) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for store in (MemoryStore(), SQLiteStore(Path(folder) / "round-trip.db")):
            try:
                with store.unit_of_work() as uow:
                    uow.add(lead)
                    uow.commit()
                with store.unit_of_work() as uow:
                    assert uow.get(Lead, lead.id) == lead
            finally:
                store.close()
