"""schemathesis against the sidecar's own OpenAPI document, served by a real `sidecar serve`.

Two processes: one without a token and one with `SIDECAR_TOKEN` set (its document fetched
with the bearer token, every generated request sent with it). schemathesis generates requests
from `/openapi.json` (path and query parameters, JSON bodies of every message type, valid and
invalid) and checks each response: no 5xx, a status code the document lists for that operation,
the documented content type and headers, a body that conforms to the documented schema. Bounded
for CI: `MAX_EXAMPLES` per operation. At the end both processes are alive and their logs hold no
traceback or internal error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sidecar.testing import messages as M
from sidecar.testing.server import SidecarProcess

TOKEN = "openapi-fuzz-token"
MAX_EXAMPLES = 15
# The alert relay's webhook (being written alongside): without a target it answers 503.
NOT_YET = ("/alerts/",)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR")}
    return {**env, **extra}


class Served:
    def __init__(self, proc: SidecarProcess, token: str | None) -> None:
        self.proc = proc
        self.token = token
        self.base_url = f"http://127.0.0.1:{proc.http_port}"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="module", params=[None, TOKEN], ids=["no-token", "token"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    token = request.param
    path = tmp_path_factory.mktemp("openapi") / "s.sqlite"
    env = _env(SIDECAR_TOKEN=token) if token else _env()
    proc = SidecarProcess(path, env=env).start()
    try:
        http = proc.http(token)
        ack = http.send(M.hello(login=12345678) | ({"token": token} if token else {}))
        assert ack["type"] == "ack", ack
        http.close()
        yield Served(proc, token)
    finally:
        log = proc.log()
        proc.stop()
        assert "Traceback" not in log and "request.internal_error" not in log, log[-3000:]


def _operations(served: Served) -> list:
    schema = schemathesis.openapi.from_url(
        f"{served.base_url}/openapi.json", headers=served.headers
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    return [op for op in operations if not op.path.startswith(NOT_YET)]


def test_api_conforms_to_its_openapi_document(served: Served) -> None:
    """Every documented operation, MAX_EXAMPLES generated requests each."""
    operations = _operations(served)
    assert len(operations) >= 8, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            case.call_and_validate(base_url=served.base_url, headers=served.headers, checks=CHECKS)

        check()
        assert served.proc.proc is not None and served.proc.proc.poll() is None, operation.label


def test_document_needs_the_token_when_one_is_set(served: Served) -> None:
    http = served.proc.http()  # no token
    try:
        status, _ = http.get("/openapi.json")
    finally:
        http.close()
    assert status == (401 if served.token else 200)
