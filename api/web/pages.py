"""The pages' addresses: ``/app/`` (the central station), ``/app/patient?id=P`` (a patient's
trends, alerts, devices and messages; ``&report=YYYY-MM-DD`` prints the daily report),
``/app/mine`` (a patient's own view) and ``/app/signin``; ``/`` leads to the station. The
static files behind them are under ``/app/static/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
PAGES = {
    "": "station.html",
    "patient": "patient.html",
    "mine": "mine.html",
    "signin": "signin.html",
}
"""Each page's path under ``/app/`` and its file."""

router = APIRouter(include_in_schema=False)
static_files = StaticFiles(directory=STATIC)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/app/")


def _page(name: str) -> Callable[[], FileResponse]:
    """A route with no parameters at all: nothing in a request chooses the file."""

    def page() -> FileResponse:
        return FileResponse(STATIC / name, media_type="text/html")

    return page


for path, file in PAGES.items():
    router.add_api_route(f"/app/{path}", _page(file), methods=["GET"])
