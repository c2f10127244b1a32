"""Typed keys for what the application holds."""

from aiohttp import web

from infra.bootstrap import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
