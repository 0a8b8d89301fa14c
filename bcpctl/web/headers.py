"""Security headers on every response (OWASP Secure Headers): no framing, no sniffing, no referrer abroad.

The pages load only this site's own stylesheet and no script, so the default policy can be
strict; a response that needs another policy (failover's HTML report with its inline style,
the partner's bundle opener with its own scripts and no network at all: ``guide.OPENER_CSP``)
sets its own and keeps it.
"""

from __future__ import annotations

from bcpctl.web.bodysize import App, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"same-origin",  # "no-referrer" would make browsers send Origin: null on form posts
    b"cross-origin-opener-policy": b"same-origin",
    b"permissions-policy": b"camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    def __init__(self, app: App, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _value in headers}
                extra = dict(HEADERS)
                extra[b"content-security-policy"] = CSP.encode()
                if self.hsts:
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                headers += [(name, value) for name, value in extra.items() if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
