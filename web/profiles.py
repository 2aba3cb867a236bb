"""GET and PUT of the caller's own profile, for travelers and agencies alike."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from astro.domain.users import Role
from web.http import Handler, authenticate, read_body, requires, respond
from web.keys import AUTH
from web.openapi import doc


def profile_endpoints(
    role: Role, model: type[BaseModel], update: type[BaseModel], what: str
) -> tuple[Handler, Handler]:
    """The two handlers for the profile of `role`: answered as `model`, replaced with `update`."""

    @doc(f"The {what}", response=model)
    @requires(role)
    async def get_profile(request: web.Request) -> web.Response:
        profile = await request.app[AUTH].profile(await authenticate(request))
        return respond(model.model_validate(profile))

    @doc(f"Replace the {what} (and the name, when given)", body=update, response=model)
    @requires(role)
    async def put_profile(request: web.Request) -> web.Response:
        data = await read_body(request, update)
        profile = await request.app[AUTH].update_profile(await authenticate(request), data.model_dump())
        return respond(model.model_validate(profile))

    return get_profile, put_profile
