"""A bounded schemathesis run over the OpenAPI document, in process, on both stores.

Every operation gets up to EXAMPLES generated requests that fit the schema and as many that
break it, with a fixed seed; no answer may be a server error. Deselect with ``-m "not fuzz"``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.python import asgi as schemathesis_asgi

from bud.settings import Settings

pytestmark = pytest.mark.fuzz
EXAMPLES = 25


@pytest.fixture
def api(settings: Settings, store_url: str) -> Iterator[Any]:
    from bud.server.app import create_app

    # schemathesis' in-process client sends "Host: testserver".
    app = create_app(
        settings.model_copy(update={"database_url": store_url, "allowed_hosts": ("testserver",)})
    )
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        schemathesis_asgi.shutdown_lifespans()  # the engine and store of this app


def test_no_operation_answers_a_server_error(api: Any) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 40
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            failures.extend(_run(operation, mode))
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures[:20])


def _run(operation: Any, mode: Any) -> list[str]:
    found: list[str] = []

    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        try:
            response = case.call()
        except Exception as exc:  # the in-process transport re-raises what the app raised
            found.append(f"{case.method} {case.formatted_path} ({mode}) raised {exc!r:.300}")
            return
        if response.status_code >= 500:
            found.append(
                f"{case.method} {case.formatted_path} ({mode}) -> {response.status_code}: "
                f"{response.text[:200]}\n    {case.as_curl_command()}"
            )

    # An operation without parameters or body has no negative case to generate.
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        check()
    return found
