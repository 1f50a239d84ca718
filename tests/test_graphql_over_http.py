"""GraphQL over HTTP as its specification describes it: ``application/graphql-response+json``
for clients that ask for it (request errors answer 4xx with no ``data``), ``application/json``
and 200 for everyone else; graphql-http's own audit of a running server; and GraphiQL served
whole from the server itself, with no internet."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenure.schema import ide
from tenure.schema.graphql_http import GRAPHQL_RESPONSE, negotiate
from tenure.testing import TenureHarness

ROOT = Path(__file__).parent.parent
AUDIT = ROOT / "tests" / "http_audit"
NEW = {"Accept": GRAPHQL_RESPONSE}
LEGACY = {"Accept": "application/json"}


async def post(tenure: TenureHarness, body: Any, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    return await tenure.client.post("/graphql", json=body, headers=headers, **kwargs)


def test_the_accept_header_chooses_the_media_type() -> None:
    assert negotiate(GRAPHQL_RESPONSE) == GRAPHQL_RESPONSE
    assert negotiate("application/json, application/graphql-response+json") == GRAPHQL_RESPONSE
    assert negotiate("application/json;q=0.9, application/graphql-response+json;q=1") == GRAPHQL_RESPONSE
    assert negotiate("application/graphql-response+json;q=0.5, application/json") == "application/json"
    assert negotiate("application/graphql-response+json;q=0") == "application/json"
    # Legacy clients: no Accept, anything, or plain JSON.
    assert negotiate(None) == negotiate("*/*") == negotiate("application/json") == "application/json"


async def test_parse_and_validation_errors_answer_400_without_data(tenure: TenureHarness) -> None:
    for query in ("{", "{ noSuchField }", "query Q($id: ID!) { __typename }"):
        answer = await post(tenure, {"query": query}, NEW)
        assert answer.status_code == 400, query
        assert answer.headers["content-type"].startswith(GRAPHQL_RESPONSE)
        body = answer.json()
        assert "data" not in body and body["errors"][0]["message"], query

    wrong_variable = await post(tenure, {"query": "query Q($n: Int!) { customers(first: $n) { totalCount } }",
                                   "variables": {"n": "ten"}}, NEW)
    assert wrong_variable.status_code == 400 and "data" not in wrong_variable.json()
    assert "Int" in wrong_variable.json()["errors"][0]["message"]


async def test_legacy_clients_keep_200_and_data_null(tenure: TenureHarness) -> None:
    for headers in (LEGACY, {"Accept": "*/*"}, {}):
        answer = await post(tenure, {"query": "{"}, headers)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["data"] is None and "Syntax Error" in answer.json()["errors"][0]["message"]


async def test_a_request_that_ran_answers_200_with_its_data(tenure: TenureHarness) -> None:
    key = await tenure.key("admin")
    fine = await post(tenure, {"query": "query Count { customers(first: 1) { totalCount } }"},
                      NEW | {"Authorization": f"Bearer {key}"})
    assert fine.status_code == 200 and fine.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert fine.json() == {"data": {"customers": {"totalCount": 0}}}
    # A field that failed is not a request error: the answer ran, so 200 with its data.
    failed_field = await post(tenure, {"query": '{ __typename customer(id: "0") { name } }'},
                              NEW | {"Authorization": f"Bearer {key}"})
    assert failed_field.status_code == 200
    assert failed_field.json()["data"]["__typename"] == "Query" and failed_field.json()["errors"]


async def test_request_errors_answer_4xx_in_the_asked_media_type(tenure: TenureHarness) -> None:
    bad_json = await tenure.client.post("/graphql", content=b"{not json",
                                        headers=NEW | {"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert bad_json.json() == {"errors": [{"message": "Unable to parse request body as JSON"}]}
    mutation_by_get = await tenure.client.get("/graphql", params={"query": "mutation { __typename }"}, headers=NEW)
    assert mutation_by_get.status_code == 405 and "data" not in mutation_by_get.json()
    legacy = await tenure.client.post("/graphql", content=b"{not json",
                                      headers=LEGACY | {"Content-Type": "application/json"})
    assert legacy.status_code == 400 and legacy.text == "Unable to parse request body as JSON"


async def test_graphiql_loads_every_file_from_the_server_itself(tenure: TenureHarness) -> None:
    page = await tenure.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "<title>Tenure GraphiQL</title>" in page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(urls) == 4, urls
    assert not re.search(r"(?:https?:)?//", page.text.split("<body>")[0]), "the page names another host"
    for url in urls:
        assert url.startswith(f"/graphiql/{ide.GRAPHIQL_VERSION}/"), url
        asset = await tenure.client.get(url)
        assert asset.status_code == 200, url
        name = url.rsplit("/", 1)[1]
        assert asset.content == (ide.ASSETS / name).read_bytes()
        assert asset.headers["content-type"].startswith("text/css" if name.endswith(".css") else "text/javascript")
    assert b"GraphiQL" in (await tenure.client.get(urls[-1])).content
    missing = await tenure.client.get(f"/graphiql/{ide.GRAPHIQL_VERSION}/../../core/settings.py")
    assert missing.status_code == 404
    old = await tenure.client.get("/graphiql/1.0.0/graphiql.min.js")
    assert old.status_code == 404 and ide.GRAPHIQL_VERSION in old.text


async def test_with_graphiql_off_neither_the_page_nor_its_files_are_served(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=[], graphiql=False) as tenure:
        page = await tenure.client.get("/graphql", headers={"Accept": "text/html"})
        asset = await tenure.client.get(f"/graphiql/{ide.GRAPHIQL_VERSION}/graphiql.min.js")
    assert page.status_code == 404 and asset.status_code == 404


def test_the_shipped_graphiql_files_carry_their_licences_and_version() -> None:
    notes = (ide.ASSETS / "README.md").read_text()
    assert f"| graphiql | {ide.GRAPHIQL_VERSION} |" in notes
    for licence in ("LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom"):
        text = (ide.ASSETS / licence).read_text()
        assert text.startswith("MIT License") and "Permission is hereby granted" in text
    assert f"graphiql@{ide.GRAPHIQL_VERSION}" not in (ide.HERE / "index.html").read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`tenure serve` on a SQLite file, as a user starts it; yields its /graphql URL."""
    tenure = shutil.which("tenure")
    assert tenure is not None
    folder = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env |= {"TENURE_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'tenure.db'}", "TENURE_PLUGINS": ""}
    log = folder / "serve.log"
    server = subprocess.Popen([tenure, "serve", "--port", str(port)], cwd=folder, env=env,
                              stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_graphql_http_audit_of_a_running_server_is_all_ok(served: str) -> None:
    """graphql-http's auditServer (npm) against `tenure serve`: every check ok, none warned."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the audit: .ci/run installs nodejs and npm")
        pytest.skip("node and npm are not installed (.ci/run installs them)")
    if not (AUDIT / "node_modules" / "graphql-http").is_dir():
        installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=AUDIT, capture_output=True,
                                   text=True, timeout=300)
        assert installed.returncode == 0, installed.stderr
    audit = subprocess.run([node, "audit.mjs", served], cwd=AUDIT, capture_output=True, text=True, timeout=300)
    summary = re.search(r"(\d+) ok, (\d+) warnings, (\d+) errors", audit.stdout)
    assert summary is not None, audit.stdout + audit.stderr
    assert audit.returncode == 0 and int(summary.group(1)) > 50 and summary.groups()[1:] == ("0", "0"), audit.stdout


@pytest.mark.slow
def test_graphiql_runs_a_query_in_a_browser_that_reaches_no_other_host(served: str) -> None:
    """Chromium with every host but this machine unresolvable: GraphiQL loads, runs a query
    and shows the answer."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    if chromium is None or chromedriver is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs chromium and chromium-driver")
        pytest.skip("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(chromedriver))
    try:
        driver.get(served + "?q=" + "%7B%20__typename%20%7D")
        run = WebDriverWait(driver, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, ".graphiql-execute-button"))
        run.click()
        WebDriverWait(driver, 30).until(lambda d: '"Query"' in d.find_element(By.CSS_SELECTOR, ".result-window").text)
        failed = [entry["message"] for entry in driver.get_log("browser")
                  if entry["level"] == "SEVERE" and "favicon" not in entry["message"]]
        assert failed == []
    finally:
        driver.quit()
