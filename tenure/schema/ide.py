"""GraphiQL served from the package itself, so the page works with no internet.

The page (``schema/graphiql/index.html``) names only this server's own URLs,
``<root path>/graphiql/<version>/<file>``; the files are GraphiQL's and React's own builds,
unchanged, with their licences beside them (``schema/graphiql/assets/README.md``). The
version is in the path, so a browser may keep a file for good.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

GRAPHIQL_VERSION = "3.8.3"
HERE = Path(__file__).parent / "graphiql"
ASSETS = HERE / "assets"
#: What may be fetched, and as what: nothing else under the folder is served.
MEDIA_TYPES = {
    "graphiql.min.js": "text/javascript; charset=utf-8",
    "graphiql.min.css": "text/css; charset=utf-8",
    "react.production.min.js": "text/javascript; charset=utf-8",
    "react-dom.production.min.js": "text/javascript; charset=utf-8",
}
ASSET_ROUTE = "/graphiql/{version}/{name}"


def assets_path(root_path: str = "") -> str:
    return f"{root_path.rstrip('/')}/graphiql/{GRAPHIQL_VERSION}"


@cache
def _template() -> str:
    return (HERE / "index.html").read_text(encoding="utf-8")


def page(request: Request) -> HTMLResponse:
    """GraphiQL's page, its files named under the path this app is mounted at."""
    html = _template().replace("{{assets}}", assets_path(request.scope.get("root_path", "")))
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if request.path_params["version"] != GRAPHIQL_VERSION or name not in MEDIA_TYPES:
        return PlainTextResponse(f"no GraphiQL file {request.url.path} (this server ships GraphiQL "
                                 f"{GRAPHIQL_VERSION}: {', '.join(sorted(MEDIA_TYPES))})", status_code=404)
    return FileResponse(ASSETS / name, media_type=MEDIA_TYPES[name],
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})
