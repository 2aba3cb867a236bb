"""localstripe as the tests run it (`python -m tests.localstripe_shim --port N --from-scratch`).

localstripe, on the loopback only, taught what Stripe does and it does not, because the saga relies on
it and a test against a server lacking it would test localstripe, not our adapter:

1. Idempotency-Key: Stripe answers a repeated POST with the first answer (another body under the same key
   is a 400 idempotency_error); localstripe ignores the header, so an authorize repeated after a crash
   would create a second PaymentIntent.
2. pm_card_visa_chargeDeclined is declined when charged (localstripe declines it only when attached).
3. `allowed_payment_method_types` (API 2026-10-28's name of `payment_method_types`) is accepted.
4. The Search API for PaymentIntents, for queries of `metadata['k']:'v'` clauses joined by OR (what the
   adapter asks). Unlike Stripe's index it never lags. `--no-search` leaves it out, as localstripe has it.
5. `created[gte|gt|lte|lt]` when listing PaymentIntents.

And made fast enough for a storm: its state stays in memory (localstripe writes the whole store to
/tmp/localstripe.pickle on every write, which took 20 s for 150 payments once 450 were stored), and a
listing reads an index of its type instead of scanning every object (Stripe's list of a charge's refunds,
read for every PaymentIntent listed, made a listing quadratic). Still missing: Stripe's events for
authorizations and cancellations (localstripe sends payment_intent.succeeded and .payment_failed only).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import re
from typing import Any

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError

DECLINED_WHEN_CHARGED = "4000000000000002"  # the card behind pm_card_visa_chargeDeclined
SEARCH_PATH = "/v1/payment_intents/search"
CLAUSE = re.compile(r"metadata\['([A-Za-z0-9_]+)'\]:'((?:[^'\\]|\\.)*)'")
_by_type: dict[str, dict[str, Any]] = {}  # object type -> store key -> object, in the store's order

_answers: dict[str, tuple[str, int, bytes]] = {}  # key -> (request fingerprint, status, body)
_locks: dict[str, asyncio.Lock] = {}


@web.middleware
async def idempotency(request: web.Request, handler: Any) -> web.StreamResponse:
    """A POST with an Idempotency-Key is done once; a repeat gets the first answer (not a 5xx one)."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)  # type: ignore[no-any-return]
    fingerprint = hashlib.sha256(f"{request.path}\n".encode() + await request.read()).hexdigest()
    async with _locks.setdefault(key, asyncio.Lock()):
        if key in _answers:
            first, status, body = _answers[key]
            if first != fingerprint:
                error = {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                }
                return web.json_response({"error": error}, status=400)
            return web.Response(
                status=status,
                body=body,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            response = await handler(request)
        except UserError as exc:
            response = exc.to_response()
        if response.status < 500 and isinstance(response, web.Response) and response.body is not None:
            body = response.body if isinstance(response.body, bytes) else json.dumps(response.body).encode()
            _answers[key] = (fingerprint, response.status, body)
        return response  # type: ignore[no-any-return]


@web.middleware
async def search(request: web.Request, handler: Any) -> web.StreamResponse:
    """GET /v1/payment_intents/search (the router would take "search" for an intent's id)."""
    if request.method != "GET" or request.path != SEARCH_PATH:
        return await handler(request)  # type: ignore[no-any-return]
    params = server.unflatten_data(request.query)
    clauses = str(params.get("query", "")).split(" OR ")
    matches = [CLAUSE.fullmatch(clause.strip()) for clause in clauses]
    if not all(matches):
        return UserError(
            400, "localstripe's search takes metadata['k']:'v' clauses joined by OR"
        ).to_response()
    wanted = [(m.group(1), re.sub(r"\\(.)", r"\1", m.group(2))) for m in matches if m is not None]
    found = [
        intent
        for intent in _by_type.get("payment_intent", {}).values()
        if any((intent.metadata or {}).get(k) == v for k, v in wanted)
    ]
    expand = [e.removeprefix("data.") for e in params.get("expand", []) if e.startswith("data.")]
    body = {
        "object": "search_result",
        "url": SEARCH_PATH,
        "has_more": False,
        "next_page": None,
        "data": [intent._export(expand=expand) for intent in found],
    }
    return server.json_response(body)


def index_the_store() -> None:
    """Keep the objects of each type in an index, and nothing on disk (see above)."""
    store_cls = resources.Store

    def setitem(self: Any, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        if ":" in key:
            _by_type.setdefault(key.split(":", 1)[0], {})[key] = value

    def delitem(self: Any, key: str) -> None:
        dict.__delitem__(self, key)
        _by_type.get(key.split(":", 1)[0], {}).pop(key, None)

    def cleared(self: Any) -> None:
        dict.clear(self)
        _by_type.clear()

    store_cls.__setitem__ = setitem
    store_cls.__delitem__ = delitem
    store_cls.clear = cleared
    store_cls.dump_to_disk = lambda self: None
    for key, value in list(resources.store.items()):
        setitem(resources.store, key, value)

    def list_all(cls: Any, url: str, limit: Any = None, starting_after: Any = None, **kwargs: Any) -> Any:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        listed = resources.List(url, limit=limit, starting_after=starting_after)
        listed._list = list(_by_type.get(cls.object, {}).values())
        return listed

    resources.StripeObject._api_list_all = classmethod(list_all)

    def intents(cls: Any, url: str, created: Any = None, **kwargs: Any) -> Any:
        listed = list_all(cls, url, **kwargs)
        if created is not None:
            bounds = created if isinstance(created, dict) else {"eq": created}
            tests = {
                "gt": int.__gt__,
                "gte": int.__ge__,
                "lt": int.__lt__,
                "lte": int.__le__,
                "eq": int.__eq__,
            }
            if not set(bounds) <= set(tests):
                raise UserError(400, "Bad request")
            limits = [(tests[op], int(value)) for op, value in bounds.items()]
            listed._list = [i for i in listed._list if all(test(i.created, at) for test, at in limits)]
        return listed

    resources.PaymentIntent._api_list_all = classmethod(intents)


def teach_stripe() -> None:
    """Patch localstripe's card and PaymentIntent models where they differ from Stripe (see above)."""
    charging_declined = resources.PaymentMethod._charging_is_declined

    def declined(self: Any) -> bool:
        if self.type == "card" and self._card_number == DECLINED_WHEN_CHARGED:
            return True
        return bool(charging_declined(self))

    resources.PaymentMethod._charging_is_declined = declined
    create = resources.PaymentIntent.__init__

    def init(self: Any, *args: Any, allowed_payment_method_types: Any = None, **kwargs: Any) -> None:
        if allowed_payment_method_types is not None:
            kwargs.setdefault("payment_method_types", allowed_payment_method_types)
        create(self, *args, **kwargs)

    resources.PaymentIntent.__init__ = init


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--from-scratch", action="store_true")
    parser.add_argument("--no-search", action="store_true", help="no Search API, as localstripe itself")
    args = parser.parse_args()
    if not args.from_scratch:
        resources.store.try_load_from_disk()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")  # webhook deliveries
    index_the_store()  # after loading: it indexes what was loaded
    teach_stripe()
    server.app.middlewares.append(idempotency)
    if not args.no_search:
        server.app.middlewares.append(search)
    web.run_app(server.app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
