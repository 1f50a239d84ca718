"""Serve the portal: its static files, and /graphql passed on to a Tenure API unchanged.

    python examples/portal/serve.py --api http://127.0.0.1:8000 --port 5173

The pass-through keeps the browser on one origin (no CORS set-up on the API); the portal
uses nothing but the public GraphQL API with the key the user signs in with.
"""

from __future__ import annotations

import argparse
import http.server
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path

HERE = Path(__file__).parent


class Portal(http.server.SimpleHTTPRequestHandler):
    api = "http://127.0.0.1:8000"

    def do_POST(self) -> None:
        if self.path != "/graphql":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {"Content-Type": "application/json"}
        if self.headers.get("Authorization"):
            headers["Authorization"] = self.headers["Authorization"]
        request = urllib.request.Request(f"{self.api}/graphql", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, payload = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        except urllib.error.URLError as error:
            status, payload = 502, f'{{"errors": [{{"message": "Tenure API unreachable: {error.reason}"}}]}}'.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="The Tenure API's base URL.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5173)
    args = parser.parse_args()
    Portal.api = args.api.rstrip("/")
    server = http.server.ThreadingHTTPServer((args.host, args.port), partial(Portal, directory=str(HERE)))
    print(f"portal on http://{args.host}:{args.port}/ (API {Portal.api})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
