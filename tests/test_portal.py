"""The portal starter (examples/portal: Vite, React, urql, generated types) end to end in
headless Chromium: the portal installed from its lock file and built as its README says, served
by `vite preview` in front of a Tenure server with the retention plugins on demo data (in KWD,
a currency with three minor digits; introspection off), a staff member signing in and reading
customers, a customer's page with its orders, their open tasks and the retention dashboard;
then a member in the member app. Screenshots of every page are kept as test artefacts (tests/artefacts/portal,
or TENURE_ARTEFACTS_DIR).

Needs Node and npm (and the npm registry for ``npm ci``), Chromium and chromedriver, and the
selenium package. Skipped only where Node is not installed; CI installs all of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow
if shutil.which("node") is None:
    pytest.skip("Node is not installed (apt-get install nodejs npm)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).parent.parent
PORTAL = ROOT / "examples" / "portal"
ARTEFACTS = Path(os.environ.get("TENURE_ARTEFACTS_DIR") or ROOT / "tests" / "artefacts") / "portal"
PLUGINS = "loyalty,tiers,nps,renewals,churn"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--lang=en-US", "--window-size=1360,1000")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 90) -> None:
    """Wait for a server to answer; if it died or never answered, say so with its log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    state = f"exited with {process.returncode}" if process.poll() is not None else f"no answer in {seconds} s"
    raise AssertionError(f"{url}: {state}; its log ends:\n{log.read_text()[-3000:]}")


def finish(process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    assert process.wait(timeout=600) == 0, f"{what} failed; its log ends:\n{log.read_text()[-4000:]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Tenure on demo data (jobs run, so churn is scored), and the portal built from a clean
    copy (no node_modules, nothing generated) served by `vite preview` in front of it. The
    portal installs and builds while the demo data is made."""
    assert shutil.which("npm"), "Node is installed without npm (apt-get install npm)"
    assert shutil.which("chromium") and shutil.which("chromedriver"), \
        "Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    folder = tmp_path_factory.mktemp("portal")
    shutil.copy(ROOT / "schema.graphql", folder / "schema.graphql")
    portal = folder / "examples" / "portal"
    shutil.copytree(PORTAL, portal, ignore=shutil.ignore_patterns("node_modules", "generated", "dist", "screenshots"))
    build_log = folder / "build.log"
    with build_log.open("wb") as out:
        build = subprocess.Popen(["bash", "-c", "npm ci --no-audit --no-fund --loglevel=error && npm run build"],
                                 cwd=portal, stdout=out, stderr=subprocess.STDOUT)

    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update(TENURE_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'portal.db'}", TENURE_PLUGINS=PLUGINS,
               TENURE_ENVIRONMENT="test", TENURE_CURRENCY="KWD",
               # The portal finds the plugins through serverInfo, so it works with introspection off.
               TENURE_INTROSPECTION="false")

    def tenure(*args: str) -> str:
        done = subprocess.run(["tenure", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    try:
        tenure("demo", "--customers", "120")
        tenure("jobs", "run")
        admin = tenure("apikey", "create", "--name", "portal test", "--role", "admin").strip()
        staff = tenure("apikey", "create", "--name", "portal", "--role", "staff",
                       "--staff-email", "sam@example.com").strip()
        finish(build, build_log, "npm ci && npm run build")
    finally:
        if build.poll() is None:
            build.kill()
    assert (portal / "dist" / "index.html").is_file()
    api_port, portal_port = free_port(), free_port()
    api_log, portal_log = folder / "api.log", folder / "preview.log"
    with api_log.open("wb") as api_out, portal_log.open("wb") as portal_out:
        processes = [
            subprocess.Popen(["tenure", "serve", "--port", str(api_port)], cwd=folder, env=env,
                             stdout=api_out, stderr=subprocess.STDOUT, start_new_session=True),
            # npx starts vite as a child of its own: each server gets a process group, ended whole.
            subprocess.Popen(["npx", "vite", "preview", "--host", "127.0.0.1", "--port", str(portal_port)],
                             cwd=portal, env=dict(os.environ, TENURE_API=f"http://127.0.0.1:{api_port}"),
                             stdout=portal_out, stderr=subprocess.STDOUT, start_new_session=True),
        ]
    try:
        wait_http(f"http://127.0.0.1:{api_port}/healthz", processes[0], api_log)
        wait_http(f"http://127.0.0.1:{portal_port}/", processes[1], portal_log)
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        print(f"\nportal screenshots in {ARTEFACTS}")
        yield {"api": f"http://127.0.0.1:{api_port}", "portal": f"http://127.0.0.1:{portal_port}",
               "admin": admin, "staff": staff, "folder": folder, "env": env}
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)


RUN_JOB = """
import asyncio, sys
from tenure.core.context import ServiceContext
from tenure.core.db import Database
from tenure.core.plugins import load_plugins
from tenure.core.settings import Settings

async def main() -> None:
    settings = Settings.from_env()
    plugins = load_plugins(settings)
    db = Database(settings.resolved_database_url)
    async with db.transaction() as session:
        await plugins.jobs[sys.argv[1]].run(ServiceContext(session, settings, plugins), {})
    await db.dispose()

asyncio.run(main())
"""


def run_job(stack: dict[str, Any], name: str) -> None:
    """Run a scheduled job now, as the scheduler would at its time."""
    done = subprocess.run([sys.executable, "-c", RUN_JOB, name], env=stack["env"], cwd=stack["folder"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def api(stack: dict[str, Any], query: str, variables: dict[str, Any] | None = None, key: str = "admin") -> Any:
    answer = httpx.post(f"{stack['api']}/graphql", json={"query": query, "variables": variables or {}},
                        headers={"Authorization": f"Bearer {stack[key]}"}, timeout=30).json()
    assert not answer.get("errors"), answer["errors"]
    return answer["data"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: Any, condition: Any, seconds: float = 30) -> Any:
    """Wait for the page to show something; if it never does, keep a screenshot of what it showed."""
    try:
        return WebDriverWait(driver, seconds, ignored_exceptions=[StaleElementReferenceException]).until(condition)
    except TimeoutException:
        driver.save_screenshot(str(ARTEFACTS / "timed-out.png"))
        shown = driver.find_element(By.TAG_NAME, "body").text[:2000]
        raise AssertionError(f"the page did not get there in {seconds} s (see timed-out.png); "
                             f"it shows:\n{shown}") from None


def texts(driver: Any, css: str) -> list[str]:
    return [e.text.replace("\xa0", " ") for e in driver.find_elements(By.CSS_SELECTOR, css)]


def no_errors_shown(driver: Any) -> None:
    shown = [t for t in texts(driver, "#main .error") if t]
    assert shown == [], shown


def screenshot(driver: Any, name: str) -> Path:
    """The whole page, not just the window: the window grows to the page's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1360, max(1000, min(int(height) + 140, 4000)))
    time.sleep(0.3)  # charts follow their container's new size
    path = ARTEFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1360, 1000)
    width, shot_height = png_size(path)
    assert width >= 1000 and shot_height >= 600, f"{path.name} is {width}x{shot_height}"
    assert path.stat().st_size > 20_000, f"{path.name} looks blank"
    return path


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def kwd(minor: int) -> str:
    """How en-US Intl writes an amount of Kuwaiti dinars: three minor digits, not two."""
    return f"{'-' if minor < 0 else ''}KWD {abs(minor) / 1000:,.3f}"


def months_back(day: date, n: int) -> date:
    index = day.year * 12 + day.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def test_signed_out_shows_only_the_sign_in_form_and_refuses_a_wrong_key(stack: dict[str, Any], browser: Any) -> None:
    refused = httpx.post(f"{stack['api']}/graphql", json={"query": "{ __schema { types { name } } }"},
                         headers={"Authorization": f"Bearer {stack['staff']}"}, timeout=30).json()
    assert refused.get("errors"), "introspection is on; the portal must work without it"
    browser.get(stack["portal"] + "/#/dashboard")
    key = wait(browser, lambda d: d.find_element(By.ID, "credential"))
    assert browser.find_elements(By.ID, "nav") == [] and browser.find_elements(By.ID, "signout") == []
    key.send_keys("tnr_not_a_real_key")
    browser.find_element(By.CSS_SELECTOR, "#signin button").click()
    wait(browser, lambda d: "not authenticated" in d.find_element(By.ID, "signin-error").text.lower())
    assert browser.find_elements(By.ID, "nav") == []
    screenshot(browser, "1-sign-in-refused")


def test_a_staff_member_works_through_the_portal(stack: dict[str, Any], browser: Any) -> None:
    staff_id = api(stack, "{ viewer { staffUser { id } } }", key="staff")["viewer"]["staffUser"]["id"]
    busiest = api(stack, "{ customers(first: 1, orderBy: {field: ORDER_COUNT, direction: DESC}) "
                         "{ nodes { id name orderCount } } }")["customers"]["nodes"][0]
    # Orders enough for a second page, with amounts whose third minor digit shows.
    placed = datetime.now(UTC) - timedelta(days=400)
    recorded = api(stack, "mutation($orders: [RecordOrderInput!]!) { recordOrders(input: {orders: $orders}) "
                          "{ results { userErrors { message } } userErrors { message } } }",
                   {"orders": [{"customerId": busiest["id"], "channel": "pos", "externalId": f"POS-{n}",
                                "currency": "KWD", "amount": 12_345 + n * 1_001,
                                "placedAt": (placed + timedelta(days=n)).isoformat()} for n in range(12)]})
    assert not recorded["recordOrders"]["userErrors"]
    assert all(not r["userErrors"] for r in recorded["recordOrders"]["results"])
    orders = api(stack, "query($id: ID!) { customer(id: $id) { orders(first: 20) { totalCount "
                        "nodes { externalId amount { amount currency } } } } }",
                 {"id": busiest["id"]})["customer"]["orders"]
    api(stack, "mutation($c: ID!, $a: ID!) { createTask(input: {title: \"Call about the lapsed order\", "
               "customerId: $c, assigneeId: $a}) { userErrors { message } } }",
        {"c": busiest["id"], "a": staff_id})

    browser.get(stack["portal"] + "/")
    wait(browser, lambda d: d.find_element(By.ID, "credential")).send_keys(stack["staff"])
    browser.find_element(By.CSS_SELECTOR, "#signin button").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "a.customer-link")) == 25)
    assert "sam" in browser.find_element(By.ID, "who").text.lower()
    assert texts(browser, "#nav a") == ["Customers", "My tasks", "Retention"]
    no_errors_shown(browser)
    screenshot(browser, "2-customers")

    # The customer page: the orders list, newest first, ten at a time, money in KWD's own digits.
    browser.get(f"{stack['portal']}/#/customer/{busiest['id']}")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#orders tr.order")) == 10)
    assert browser.find_element(By.ID, "customer-name").text == busiest["name"]
    assert browser.find_element(By.ID, "orders-count").text == f"{orders['totalCount']} in all"
    shown = texts(browser, "#orders tr.order td.mono")
    assert shown == [o["externalId"] for o in orders["nodes"][:10]]
    amounts = [t.splitlines()[0] for t in texts(browser, "#orders tr.order td.amount")]
    assert amounts == [kwd(o["amount"]["amount"]) for o in orders["nodes"][:10]]
    assert all(o["amount"]["currency"] == "KWD" for o in orders["nodes"])
    assert orders["totalCount"] > 20
    for section in ("profile", "churn", "points", "tier", "surveys", "subscriptions", "timeline"):
        assert browser.find_element(By.ID, section).is_displayed(), section
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline li"))
    no_errors_shown(browser)
    screenshot(browser, "3-customer")
    browser.find_element(By.ID, "more-orders").click()
    later = min(20, orders["totalCount"])
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#orders tr.order")) == later)
    assert texts(browser, "#orders tr.order td.mono") == [o["externalId"] for o in orders["nodes"][:later]]

    browser.find_element(By.CSS_SELECTOR, '#nav a[href="#/tasks"]').click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.task"))
    assert any("Call about the lapsed order" in t and busiest["name"] in t for t in texts(browser, "tr.task"))
    screenshot(browser, "4-my-open-tasks")


def test_the_dashboard_draws_crr_and_churn_from_complete_counts(stack: dict[str, Any], browser: Any) -> None:
    today = datetime.now(UTC).date()
    this_month = today.replace(day=1)
    start = months_back(today, 12)
    crr = api(stack, "query($f: Date!, $t: Date!) { retention(from: $f, to: $t) { start retentionRate } }",
              {"f": start.isoformat(), "t": (this_month - timedelta(days=1)).isoformat()})["retention"]
    assert len(crr) == 12 and crr[-1]["start"] == months_back(today, 1).isoformat()
    levels = api(stack, "{ all: churnWarnings(first: 1) { totalCount } "
                        "high: churnWarnings(first: 1, filter: {levels: [HIGH]}) { totalCount } "
                        "medium: churnWarnings(first: 1, filter: {levels: [MEDIUM]}) { totalCount } "
                        "low: churnWarnings(first: 1, filter: {levels: [LOW]}) { totalCount } }")
    open_total = levels["all"]["totalCount"]
    assert open_total > 20  # more than a first page of the default size would count
    nps = api(stack, "query($f: Date!) { npsReport(from: $f) { trend { start nps } } }",
              {"f": start.isoformat()})["npsReport"]["trend"]
    tiers = api(stack, "{ tierDistribution { customers } }")["tierDistribution"]
    liability = api(stack, "{ pointsLiability { issued redeemed expired reversed pending outstanding } }")[
        "pointsLiability"]

    browser.get(stack["portal"] + "/#/dashboard")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#crr .recharts-bar-rectangle")) == 12)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#warnings .recharts-bar-rectangle"))
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#nps .recharts-line-dot"))
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#cohorts td.cell"))
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#liability .recharts-bar-rectangle"))
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#tiers .recharts-bar-rectangle"))
    no_errors_shown(browser)

    # CRR: one bar per whole month, labelled with the server's rate; the running month left out.
    labels = texts(browser, "#crr .recharts-label-list text")
    assert labels == [f"{m['retentionRate']:.1f}%" for m in crr if m["retentionRate"] is not None]
    # Churn: every open warning counted, per level, from totalCount.
    per_level = [int(t.replace(",", "")) for t in texts(browser, "#warning-levels .level-count")]
    assert per_level == [levels[k]["totalCount"] for k in ("high", "medium", "low")]
    assert sum(per_level) == open_total
    drawn = [int(t) for t in texts(browser, "#warnings .recharts-label-list text")]
    assert [n for n in drawn if n] == [n for n in per_level if n]  # the bars' labels, top to bottom
    assert browser.find_element(By.ID, "warnings-total").text == f"{open_total:,}"
    # NPS: whole months only; the server's trend for the running month is not drawn.
    answered = [p for p in nps if p["nps"] is not None]
    whole_months = [p for p in answered if p["start"] < this_month.isoformat()]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#nps .recharts-line-dot")) == len(whole_months)
    assert texts(browser, "#cohorts td.cell")[0] == "100"  # everyone in a cohort ordered in its first month
    drawn_bars = browser.find_elements(By.CSS_SELECTOR, "#liability .recharts-bar-rectangle")
    assert len(drawn_bars) == len([n for n in liability.values() if n])  # a bar of 0 points is not drawn
    assert f"{liability['outstanding']:,} points outstanding" in browser.find_element(By.ID, "liability").text
    assert [int(t) for t in texts(browser, "#tiers .recharts-label-list text")] and \
        sum(int(t) for t in texts(browser, "#tiers .recharts-label-list text")) == sum(t["customers"] for t in tiers)
    screenshot(browser, "5-retention-dashboard")

    problems = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == []


def test_a_member_sees_points_tier_rewards_and_answers_the_survey(stack: dict[str, Any], browser: Any) -> None:
    people = api(stack, "{ customers(first: 50) { edges { node { id name emails consent { email } } } } }")
    customer = next(e["node"] for e in people["customers"]["edges"] if e["node"]["consent"]["email"]
                    and e["node"]["emails"])
    cid = customer["id"]
    before = api(stack, "query($id: ID!) { customer(id: $id) { points { balance } } }", {"id": cid})
    api(stack, 'mutation($c: ID!) { adjustPoints(input: {customerId: $c, points: 500, reason: "welcome gift", '
               'idempotencyKey: "portal-gift"}) { userErrors { message } } }', {"c": cid})
    api(stack, 'mutation { createReward(input: {name: "Free coffee", cost: 300, description: "Any size"}) '
               "{ userErrors { message } } }")
    survey = api(stack, 'mutation { createSurvey(input: {name: "Portal NPS", trigger: MANUAL, delayDays: 0}) '
                        "{ survey { id } userErrors { message } } }")["createSurvey"]["survey"]["id"]
    api(stack, "mutation($s: ID!, $c: ID!) { sendSurvey(input: {surveyId: $s, customerIds: [$c]}) "
               "{ userErrors { message } } }", {"s": survey, "c": cid})
    run_job(stack, "nps.send_due")
    token = api(stack, "mutation($c: ID!) { issueMemberToken(input: {customerId: $c}) { token } }",
                {"c": cid})["issueMemberToken"]["token"]
    stack["member"] = token
    assert api(stack, "{ me { openSurveys { token } } }", key="member")["me"]["openSurveys"]
    balance = before["customer"]["points"]["balance"] + 500

    browser.get(stack["portal"] + "/#/member")
    wait(browser, lambda d: d.find_element(By.ID, "credential")).send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#signin button").click()
    wait(browser, lambda d: d.find_elements(By.ID, "hello"))
    assert browser.find_element(By.ID, "hello").text == f"Hi {customer['name']}"
    assert browser.find_element(By.ID, "balance").text == f"{balance:,}"
    assert browser.find_element(By.ID, "tier").is_displayed()
    coffee = next(b for b in browser.find_elements(By.CSS_SELECTOR, "#rewards button") if b.text == "300 points")
    screenshot(browser, "6-member")
    coffee.click()
    wait(browser, lambda d: d.find_elements(By.ID, "notice") and d.find_element(By.ID, "notice").text
         == "Enjoy your reward!")
    wait(browser, lambda d: d.find_element(By.ID, "balance").text == f"{balance - 300:,}")
    scores = browser.find_elements(By.CSS_SELECTOR, "#survey .scores button")
    assert [b.text for b in scores] == [str(n) for n in range(11)]
    scores[9].click()
    wait(browser, lambda d: d.find_element(By.ID, "notice").text == "Thank you for your answer!")
    wait(browser, lambda d: not d.find_elements(By.ID, "survey"))
    screenshot(browser, "7-member-after")
    answers = api(stack, "query($id: ID!) { customer(id: $id) { surveys(first: 5) { response { score } } } }",
                  {"id": cid})["customer"]["surveys"]
    assert [s["response"]["score"] for s in answers if s["response"]] == [9]

    # That answer is this month's: the server's NPS trend now ends in the running month, and the
    # dashboard leaves that partial month out (the staff key is still in the tab).
    this_month = datetime.now(UTC).date().replace(day=1).isoformat()
    trend = api(stack, "query($f: Date!) { npsReport(from: $f) { trend { start nps } } }",
                {"f": months_back(datetime.now(UTC).date(), 12).isoformat()})["npsReport"]["trend"]
    assert trend[-1]["start"] == this_month and trend[-1]["nps"] is not None
    browser.get(stack["portal"] + "/#/dashboard")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#nps .recharts-line-dot"))
    whole_months = [p for p in trend if p["nps"] is not None and p["start"] < this_month]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#nps .recharts-line-dot")) == len(whole_months)
