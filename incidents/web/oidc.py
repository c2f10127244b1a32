"""Single sign-on with OpenID Connect: authorization code flow with PKCE (being built)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
