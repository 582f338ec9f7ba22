"""The dashboard's web application: HTML pages and the JSON they poll, read-only.

Every route reads through `views` (which reads through the CLI's operations), so the dashboard shows
exactly what `shepherd status`, `history` and friends show. There is no login: `server.serve` binds
to the loopback interface only, like `argo rollouts dashboard`, the app answers GET only, and only to
a loopback Host with the run's token (guard.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from shepherd_cli.errors import CliError
from shepherd_cli.target import Target
from shepherd_cli.ui import catalog, views
from shepherd_cli.ui.guard import Access, Guard
from shepherd_cli.ui.instance_counts import CountSampler
from shepherd_cli.ui.paging import page_number
from shepherd_cli.ui.problems import unreachable

HERE = Path(__file__).resolve().parent
REFRESH_MILLISECONDS = 2000  # how often the endpoint page polls while a rollout runs


class Dashboard:
    """The routes of one dashboard. `target` is called per request: a deployed stack's or local
    mode's Target (the same the CLI resolves)."""

    def __init__(self, target: Callable[[], Target]) -> None:
        self.target = target
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["refresh_ms"] = REFRESH_MILLISECONDS
        self.sampler = CountSampler()  # the instance counts this dashboard saw (instance_counts.py)

    async def page(self, request: Request, template: str, read: Callable[[Target], dict[str, Any]]) -> Response:
        target = self.target()
        try:
            data = await run_in_threadpool(read, target)
        except CliError as error:
            return self.templates.TemplateResponse(request, "error.html", {"message": str(error)}, status_code=404)
        except (BotoCoreError, ClientError) as error:
            # Not a server error: local mode stopped, credentials expired. Say what to run.
            problem = unreachable(target, error)
            context = {**problem, "target": target.describe()}
            return self.templates.TemplateResponse(request, "unreachable.html", context, status_code=503)
        return self.templates.TemplateResponse(request, template, {"data": data, "target": target.describe()})

    async def api(self, read: Callable[[Target], dict[str, Any]]) -> Response:
        target = self.target()
        try:
            return JSONResponse(await run_in_threadpool(read, target))
        except CliError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        except (BotoCoreError, ClientError) as error:
            problem = unreachable(target, error)
            return JSONResponse({"error": problem["problem"], **problem}, status_code=503)

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/models")

    async def models(self, request: Request) -> Response:
        return await self.page(request, "models.html", views.models_page)

    async def endpoints(self, request: Request) -> Response:
        return await self.page(request, "endpoints.html", views.endpoints_page)

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await self.page(request, "endpoint.html", lambda t: views.endpoint_page(t, name, self.sampler))

    async def rollout(self, request: Request) -> Response:
        name, rollout_id = request.path_params["name"], request.path_params["rollout_id"]
        return await self.page(request, "rollout.html", lambda t: views.rollout_report(t, name, rollout_id))

    async def history(self, request: Request) -> Response:
        name = request.query_params.get("name") or None
        page = page_number(request.query_params.get("page"))
        return await self.page(request, "history.html", lambda t: views.history_page(t, name, page))

    async def model(self, request: Request) -> Response:
        name, page = request.path_params["name"], page_number(request.query_params.get("page"))
        return await self.page(request, "model.html", lambda t: catalog.model_page(t, name, page))

    async def version(self, request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params["version"]
        return await self.page(request, "version.html", lambda t: catalog.version_page(t, name, version))

    async def models_json(self, request: Request) -> Response:
        return await self.api(views.models_page)

    async def endpoint_json(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await self.api(lambda t: views.endpoint_page(t, name, self.sampler))

    async def rollout_json(self, request: Request) -> Response:
        name, rollout_id = request.path_params["name"], request.path_params["rollout_id"]
        return await self.api(lambda t: views.rollout_report(t, name, rollout_id))


def create_app(target: Callable[[], Target], access: Access) -> Starlette:
    """The dashboard's ASGI app: GET routes only (anything else is 405), for the requests `access`
    allows."""
    board = Dashboard(target)
    return Starlette(
        middleware=[Middleware(Guard, access=access)],
        routes=[
            Route("/", board.home),
            Route("/models", board.models),
            Route("/models/{name}", board.model),
            Route("/models/{name}/versions/{version:int}", board.version),
            Route("/endpoints", board.endpoints),
            Route("/endpoints/{name}", board.endpoint),
            Route("/endpoints/{name}/rollouts/{rollout_id}", board.rollout),
            Route("/history", board.history),
            Route("/api/models", board.models_json),
            Route("/api/endpoints/{name}", board.endpoint_json),
            Route("/api/endpoints/{name}/rollouts/{rollout_id}", board.rollout_json),
            Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        ],
    )
