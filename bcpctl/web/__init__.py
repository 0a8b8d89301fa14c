"""The web surface: a partner portal for export requests and an operator dashboard.

A self-contained ASGI application (FastAPI) built by :func:`bcpctl.web.app.create_app`.
``bcpctl web`` serves it alone with uvicorn; ``bcpctl serve`` mounts it beside ``/metrics``.
Like the CLI it is a thin layer: every page and endpoint parses, checks who is asking,
calls one core function of ``victim_support`` or ``failover`` and renders the result.
"""
