"""Models of the payment gateway's webhook (documentation of what Stripe sends, and our answer)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from astro.schemas.common import Response


class StripeEventObject(BaseModel):
    """The object an event is about; only its id and kind are used."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str


class StripeEventData(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: StripeEventObject


class StripeEventIn(BaseModel):
    """A Stripe event, signed in the Stripe-Signature header; its state is never trusted, only its ids."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    data: StripeEventData
    created: int | None = None


class WebhookAnswer(Response):
    received: bool = True
    outcome: Literal["acted", "duplicate", "ignored"]
