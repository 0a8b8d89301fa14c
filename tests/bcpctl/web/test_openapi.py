"""schemathesis against the app's own /openapi.json: no generated input makes the server fail (no 5xx).

Every operation is called with valid credentials for its side — an operator account holding
every role; for partners a request signed over the exact bytes schemathesis generated, or a
token — so generated inputs reach the handlers instead of stopping at 401. Run with ``-s``
to print the figures (operations, calls, statuses).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.bcpctl.web.conftest import PASSWORDS, basic

EXAMPLES = 15


def _credentials(client: Any, ctx: Any) -> tuple[dict[str, str], dict[str, str]]:
    from dc.accounts import ROLES, add_account
    from dc.clock import utcnow
    from dc.passwords import Cost

    PASSWORDS["fuzz-root"] = "fuzz-root-password"
    add_account(ctx.state, "fuzz-root", ROLES, PASSWORDS["fuzz-root"], actor="test", now=utcnow(), cost=Cost(8, 1, 1))
    token = client.post("/api/operator/partners/koga/tokens", json={}, headers=basic("ops")).json()["token"]
    return basic("fuzz-root"), {"Authorization": f"Bearer {token}"}


def test_no_server_errors(client: Any, web_ctx: Any, web_site: Any) -> None:
    from bcpctl.web.ratelimit import RateLimiter
    from victim_support.partnersig import sign_headers

    web_ctx.login_limiter = RateLimiter(100_000)  # refused signatures must not turn into 429s here
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operator, partner_token = _credentials(client, web_ctx)
    figures: Counter[str] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]

    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="https://testserver")
            headers = {k: v for k, v in (kwargs.pop("headers", None) or {}).items() if k.lower() != "authorization"}
            raw: bytes = b""
            if "json" in kwargs:
                raw = json.dumps(kwargs.pop("json"), ensure_ascii=False).encode()
                headers["Content-Type"] = "application/json"
            elif kwargs.get("data") is not None or kwargs.get("content") is not None:
                payload = kwargs.pop("data", None) or kwargs.pop("content", None)
                raw = payload if isinstance(payload, bytes) else str(payload).encode()
            url = urlsplit(kwargs.pop("url"))
            target = url.path + (f"?{url.query}" if url.query else "")
            if case.path.startswith("/api/operator"):
                headers.update(operator)
            elif case.method.upper() == "GET" or (case.path, case.method.upper()) == ("/api/partner/requests", "POST"):
                now = web_ctx.now()
                headers.update(sign_headers(web_site.partner_key, "koga", case.method, target, raw, now=now))
            else:
                headers.update(partner_token)
            response = client.request(
                case.method, target, content=raw or None, headers=headers, params=None, cookies=kwargs.get("cookies")
            )
            figures[f"{response.status_code}"] += 1
            figures["calls"] += 1
            case.validate_response(response, checks=[not_a_server_error])

        call()
        figures["operations"] += 1
    web_ctx.jobs.wait(120)
    print(f"\nschemathesis: {dict(sorted(figures.items()))}")
    assert figures["operations"] == len(operations) >= 15
    assert not any(code.startswith("5") for code in figures)
    assert figures["200"] + figures["201"] + figures["202"] > 0  # inputs reached the handlers
