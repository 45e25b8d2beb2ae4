"""ASGI entry point for several worker processes (`degreeflow serve --workers N`, or any ASGI server):
`uvicorn --factory degreeflow.web.asgi:create`. Settings come from the DEGREEFLOW_* environment."""

from __future__ import annotations

from fastapi import FastAPI

from degreeflow import app as wiring
from degreeflow.settings import Settings
from degreeflow.web.app import create_app, prepare_to_serve


def create() -> FastAPI:
    settings = Settings()
    app = create_app(wiring.build(settings=settings), settings, scheduler=False)
    prepare_to_serve(app)
    return app
