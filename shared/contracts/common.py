"""Snapshots that several contracts carry."""

import uuid

from pydantic import BaseModel


class CustomerSnapshot(BaseModel):
    id: uuid.UUID
    name: str
    mobile: str | None = None
    preferred_channel: str = "phone"
    language: str = "zh-CN"
    contact_consent: bool = True


class VehicleSnapshot(BaseModel):
    id: uuid.UUID
    vin: str
    plate: str | None = None
    make: str | None = None
    model: str | None = None
    model_year: int | None = None
