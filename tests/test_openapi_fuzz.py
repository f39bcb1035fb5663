"""Schemathesis drives a live server on loopback from docs/openapi.yaml: valid and invalid
requests to every operation, bounded in time. No answer may be a 5xx, and every answer
must conform to the description (status, content type, body schema); every request
generated as invalid must be refused with a 4xx (negative_data_rejection)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from relay.web.openapi import spec  # noqa: E402
from testkit.local_server import LocalServer  # noqa: E402

from .conftest import PASSWORD, start_server  # noqa: E402

BUDGET_S = 45.0  # the whole run, well inside a minute
EXAMPLES = 12  # per operation and mode
# Signing out would leave the rest of the run unauthenticated, and a drained node answers
# every later call creation with 503 draining: both correct, but the run would test less.
SKIP = {"POST /api/logout", "POST /api/node/drain"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    # Room for every call the run creates: a full server answers 503, rightly, but not a finding.
    calls = "[calls]\nmax_per_counselor = 500\nmax_concurrent = 500\n"
    running = start_server(Path(tmp_path_factory.mktemp("fuzzed")), extra=calls)
    yield running
    running.stop()


def test_no_request_gets_a_5xx_and_every_answer_conforms(fuzzed: LocalServer) -> None:
    http = requests.Session()
    token = http.post(fuzzed.base_url + "/api/login", json={"username": "sue", "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    call = http.post(fuzzed.base_url + "/api/calls", json={}, headers=auth).json()
    schema = schemathesis.openapi.from_dict(spec())
    tally: Counter[str] = Counter()
    accepted: Counter[str] = Counter()  # negative cases answered without a 4xx
    failures: list[str] = []
    started = time.monotonic()

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in SKIP:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if time.monotonic() - started > BUDGET_S:
                break
            params = (
                {"call_id": call["call_id"]}
                if "{call_id}" in operation.path and mode is GenerationMode.POSITIVE
                else None
            )
            try:
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=params)
            except Exception as exc:  # noqa: BLE001 - an operation with nothing to negate
                tally[f"skipped {mode.value}"] += 1
                del exc
                continue

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(strategy)
            def run(case: schemathesis.Case) -> None:
                if time.monotonic() - started > BUDGET_S:
                    return
                mode = case.meta.generation.mode if case.meta else GenerationMode.POSITIVE
                response = case.call(base_url=fuzzed.base_url, session=http, headers=auth, timeout=10)
                tally[f"{mode.value} requests"] += 1
                if 400 <= response.status_code < 500:
                    tally[f"{mode.value} 4xx"] += 1
                elif mode is GenerationMode.NEGATIVE:
                    accepted[f"{case.operation.label} {response.status_code}"] += 1
                if response.status_code >= 500:
                    tally["5xx"] += 1
                checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
                try:
                    case.validate_response(response, checks=checks, headers=auth)
                except Exception as exc:  # noqa: BLE001 - collected, reported together below
                    failures.append(f"{case.operation.label} [{mode.value}] -> {response.status_code}: {exc}"[:600])

            try:
                run()
            except Unsatisfiable:  # nothing in this operation can be made invalid (no body, free-form path)
                tally[f"nothing to negate {mode.value}"] += 1
            except Exception as exc:  # noqa: BLE001 - hypothesis could not build examples
                tally[f"unbuildable {mode.value}"] += 1
                failures.append(f"{operation.label} [{mode.value}] generation: {exc}"[:300])

    elapsed = time.monotonic() - started
    print(f"\nfuzz: {dict(tally)} in {elapsed:.1f} s; negative cases not refused: {dict(accepted)}")
    assert elapsed < 60
    assert tally["positive requests"] > 100 and tally["negative requests"] > 100, failures[:3]
    assert tally["5xx"] == 0
    assert not failures, "\n".join(failures[:20])
    log = fuzzed.log()
    assert "Traceback" not in log and "unhandled error" not in log
