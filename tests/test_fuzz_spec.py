"""Every operation of /openapi.json, fuzzed by schemathesis for each role: anonymous, a worker, a
brand and an admin. No answer may be a 5xx, break its documented schema or content type, or carry a
status code the spec does not list for it.

Schemathesis generates the requests from the spec itself, valid and invalid alike, so the spec and
the code are checked against each other; a hand-written list of bad inputs only finds what its
author thought of. The number of examples per operation is bounded (FUZZ_EXAMPLES, default 12) to
keep the suite's time; a deeper run is `FUZZ_EXAMPLES=200 pytest tests/test_fuzz_spec.py`.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import auth, create_brief, make_admin, sign_up_brand, sign_up_worker

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

pytestmark = pytest.mark.slow


@pytest.fixture
def roles(client, runner) -> dict[str, dict]:
    """Headers of each kind of caller, the brand with a draft brief of its own (a real id to hit)."""
    _, brand_key = sign_up_brand(client)
    create_brief(client, brand_key)
    _, worker_token = sign_up_worker(client)
    return {"anonymous": {}, "worker": auth(worker_token), "brand": auth(brand_key), "admin": auth(make_admin(runner))}


def _operations(app) -> list:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_role_gets_a_5xx_or_an_undocumented_answer(app, roles, mode):
    """(schemathesis's own pytest plugin does not run under pytest 9 yet, so hypothesis is driven here.)"""
    failures: list[str] = []
    operations = _operations(app)
    assert len(operations) >= 35  # the whole spec was read
    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case):
            for role, headers in roles.items():
                try:
                    case.call_and_validate(headers={**(case.headers or {}), **headers}, checks=CHECKS)
                except (Exception, BaseExceptionGroup) as failure:  # every operation is tried, all reported
                    failures.append(f"{case.operation.method.upper()} {case.operation.path} as {role}: "
                                    f"{str(failure)[:1500]}")
                    raise

        try:
            fuzz()
        except (Exception, BaseExceptionGroup):
            pass  # recorded above, with the role
    assert not failures, "\n\n".join(failures)
