"""Property-based tests: any value round-trips; no request body makes the endpoint fail."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from active_users.backends import Presence, get_backend
from active_users.keys import ActiveUserEntry
from active_users.models import Activity

any_text = st.text(st.characters(exclude_categories=()), max_size=300)
examples = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@examples
@given(values=st.fixed_dictionaries({f: any_text for f in ActiveUserEntry.fields}))
def test_any_entry_values_round_trip_through_the_store(backend_name, values) -> None:
    entry = ActiveUserEntry(**values)
    get_backend().touch(Presence(entry.dump(), "1"))
    stored = [ActiveUserEntry.load(m).to_dict() for m in get_backend().members()]
    get_backend().clear()
    assert stored == [values]


@pytest.fixture
def reader(make_user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(make_user("prop"))
    return client


fields = st.one_of(st.none(), any_text, st.integers(), st.lists(st.integers(), max_size=2))
dates = st.one_of(
    fields,
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                 timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5))])
                 ).map(lambda d: d.isoformat()),
    st.just("now"),
)  # fmt: skip
events = st.one_of(fields, st.sampled_from(["pageview", "heartbeat"]))
bodies = st.fixed_dictionaries(
    {},
    optional={"date": dates, "event": events, "path": fields, "referer": fields, "extra": fields},
)


def fill(body: dict[str, object]) -> dict[str, object]:
    if body.get("date") == "now":
        body = {**body, "date": datetime.now(timezone.utc).isoformat()}
    return body


@examples
@given(body=bodies, as_form=st.booleans())
def test_no_body_makes_the_log_endpoint_fail_and_rejected_ones_store_nothing(
    db, reader, body, as_form
) -> None:
    body = fill(body)
    before = Activity.objects.count()
    if as_form:
        form = {k: str(v) for k, v in body.items() if v is not None}
        response = reader.post("/tracking/log/", form)
    else:
        response = reader.post("/tracking/log/", json.dumps(body), content_type="application/json")
    assert response.status_code < 500
    if response.status_code in (201, 204):  # JSON, form
        row = Activity.objects.latest("id")
        sent = form if as_form else body
        assert row.path == (sent.get("path") or "")
        assert row.referer == (sent.get("referer") or "")
    else:
        assert 400 <= response.status_code < 500
        assert Activity.objects.count() == before
        assert response.json()["field"]
