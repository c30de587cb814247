"""The service's routes, one :class:`fastapi.APIRouter` per area; dependencies in ``deps``."""

from __future__ import annotations

from fastapi import APIRouter

from coldbrew.serve.routes import admin, interactions, items, ops, recommend, users

# in this order: it is the order of the paths in the OpenAPI document
ROUTERS: tuple[APIRouter, ...] = (
    ops.router,
    items.router,
    users.router,
    interactions.router,
    recommend.router,
    admin.router,
)
