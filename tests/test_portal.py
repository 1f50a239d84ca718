"""The portal starter (examples/portal) end to end in headless Chromium: a Tenure server with
the five retention plugins on demo data, the portal in front of it, a staff member signing in
and reading a customer 360, their open tasks and the retention dashboard. Each page is
screenshotted and the screenshots checked.

Needs Debian's chromium and chromium-driver and the selenium package; skipped without them.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow
webdriver = pytest.importorskip("selenium.webdriver")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PORTAL = Path(__file__).parent.parent / "examples" / "portal"
PLUGINS = "loyalty,tiers,nps,renewals,churn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 90) -> None:
    """Wait for the server to answer; if it died or never answered, say so with its log."""
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Tenure on demo data (jobs run, so churn is scored), and the portal in front of it."""
    folder = tmp_path_factory.mktemp("portal")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update(TENURE_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'portal.db'}", TENURE_PLUGINS=PLUGINS,
               TENURE_ENVIRONMENT="test")

    def tenure(*args: str) -> str:
        done = subprocess.run(["tenure", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    tenure("demo", "--customers", "120")
    tenure("jobs", "run")
    admin = tenure("apikey", "create", "--name", "portal test", "--role", "admin").strip()
    staff = tenure("apikey", "create", "--name", "portal", "--role", "staff",
                   "--staff-email", "sam@example.com").strip()
    api_port, portal_port = free_port(), free_port()
    api_log, portal_log = folder / "api.log", folder / "portal.log"
    with api_log.open("wb") as api_out, portal_log.open("wb") as portal_out:
        processes = [
            subprocess.Popen(["tenure", "serve", "--port", str(api_port)], cwd=folder, env=env,
                             stdout=api_out, stderr=subprocess.STDOUT),
            subprocess.Popen([sys.executable, str(PORTAL / "serve.py"), "--api", f"http://127.0.0.1:{api_port}",
                              "--port", str(portal_port)], cwd=folder, stdout=portal_out, stderr=subprocess.STDOUT),
        ]
    try:
        wait_http(f"http://127.0.0.1:{api_port}/healthz", processes[0], api_log)
        wait_http(f"http://127.0.0.1:{portal_port}/", processes[1], portal_log)
        yield {"api": f"http://127.0.0.1:{api_port}", "portal": f"http://127.0.0.1:{portal_port}",
               "admin": admin, "staff": staff, "shots": folder, "env": env}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


RUN_JOB = """
import asyncio, sys
from core.context import ServiceContext
from core.db import Database
from core.plugins import load_plugins
from core.settings import Settings

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
    done = subprocess.run([sys.executable, "-c", RUN_JOB, name], env=stack["env"], cwd=stack["shots"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def api(stack: dict[str, Any], query: str, variables: dict[str, Any] | None = None, key: str = "admin") -> Any:
    answer = httpx.post(f"{stack['api']}/graphql", json={"query": query, "variables": variables or {}},
                        headers={"Authorization": f"Bearer {stack[key]}"}, timeout=30).json()
    assert not answer.get("errors"), answer["errors"]
    return answer["data"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def page(driver: Any, name: str) -> None:
    WebDriverWait(driver, 30, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: d.find_element(By.ID, "main").get_attribute("data-page") == name
        or d.find_elements(By.CSS_SELECTOR, "#main > p.error"))
    errors = driver.find_elements(By.CSS_SELECTOR, "#main > p.error")
    assert not errors or not errors[0].text, errors[0].text


def screenshot(driver: Any, stack: dict[str, Any], name: str) -> Path:
    path = stack["shots"] / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_a_staff_member_works_through_the_portal(stack: dict[str, Any], browser: Any) -> None:
    staff_id = api(stack, "{ viewer { staffUser { id } } }", key="staff")["viewer"]["staffUser"]["id"]
    warning = api(stack, "{ churnWarnings(first: 1) { edges { node { reasons customer { id name } } } } }")
    at_risk = warning["churnWarnings"]["edges"][0]["node"]
    api(stack, "mutation($c: ID!, $a: ID!) { createTask(input: {title: \"Call about the lapsed order\", "
               "customerId: $c, assigneeId: $a}) { userErrors { message } } }",
        {"c": at_risk["customer"]["id"], "a": staff_id})
    tiers = api(stack, "{ tierDistribution { customers } }")["tierDistribution"]

    browser.get(stack["portal"] + "/")
    key = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "key"))
    key.send_keys("tk_not_a_real_key")
    browser.find_element(By.CSS_SELECTOR, "#signin button").click()
    WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: "not authenticated" in d.find_element(By.ID, "signin-error").text)
    shots = [screenshot(browser, stack, "1-sign-in-refused")]
    browser.find_element(By.ID, "key").send_keys(stack["staff"])
    browser.find_element(By.CSS_SELECTOR, "#signin button").click()
    page(browser, "customers")
    assert "sam" in browser.find_element(By.ID, "who").text.lower()
    assert len(browser.find_elements(By.CSS_SELECTOR, "a.customer-link")) == 25
    shots.append(screenshot(browser, stack, "2-customers"))

    browser.get(f"{stack['portal']}/#/customer/{at_risk['customer']['id']}")
    page(browser, "customer")
    assert browser.find_element(By.ID, "customer-name").text == at_risk["customer"]["name"]
    reasons = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#churn-reasons li")]
    assert reasons == at_risk["reasons"]
    for section in ("profile", "points", "tier", "surveys", "subscriptions", "timeline"):
        assert browser.find_element(By.ID, section).is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    shots.append(screenshot(browser, stack, "3-customer-360"))

    browser.find_element(By.CSS_SELECTOR, 'nav a[href="#/tasks"]').click()
    page(browser, "tasks")
    titles = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "tr.task")]
    assert any("Call about the lapsed order" in t and at_risk["customer"]["name"] in t for t in titles)
    shots.append(screenshot(browser, stack, "4-my-open-tasks"))

    browser.find_element(By.CSS_SELECTOR, 'nav a[href="#/dashboard"]').click()
    page(browser, "dashboard")
    cells = browser.find_elements(By.CSS_SELECTOR, "#cohorts svg g.cell text")
    assert cells and cells[0].text == "100"  # everyone in a cohort ordered in its first month
    assert browser.find_elements(By.CSS_SELECTOR, "#nps svg path")
    assert browser.find_elements(By.CSS_SELECTOR, "#warnings svg g.bar")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#liability svg g.bar")) == 6
    assert len(browser.find_elements(By.CSS_SELECTOR, "#tiers svg g.bar")) == len(tiers)
    shots.append(screenshot(browser, stack, "5-retention-dashboard"))

    problems = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == []
    for shot in shots:
        width, height = png_size(shot)
        assert width >= 1000 and height >= 600, f"{shot.name} is {width}x{height}"
        assert shot.stat().st_size > 10_000, f"{shot.name} looks blank"


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

    browser.get(stack["portal"] + "/member.html")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "token")).send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#signin button").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "main").get_attribute("data-page") == "member")
    assert browser.find_element(By.ID, "hello").text == f"Hi {customer['name']}"
    assert browser.find_element(By.ID, "balance").text == f"{balance:,}"
    assert browser.find_element(By.ID, "tier").is_displayed()
    coffee = next(b for b in browser.find_elements(By.CSS_SELECTOR, "#rewards button") if b.text == "300 points")
    screenshot(browser, stack, "6-member")
    coffee.click()
    WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: d.find_elements(By.ID, "notice") and d.find_element(By.ID, "notice").text == "Enjoy your reward!")
    assert browser.find_element(By.ID, "balance").text == f"{balance - 300:,}"
    scores = browser.find_elements(By.CSS_SELECTOR, "#survey .scores button")
    assert [b.text for b in scores] == [str(n) for n in range(11)]
    scores[9].click()
    WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: d.find_element(By.ID, "notice").text == "Thank you for your answer!")
    assert not browser.find_elements(By.ID, "survey")
    shot = screenshot(browser, stack, "7-member-after")
    assert png_size(shot)[0] >= 1000 and shot.stat().st_size > 10_000
    answers = api(stack, "query($id: ID!) { customer(id: $id) { surveys(first: 5) { response { score } } } }",
                  {"id": cid})["customer"]["surveys"]
    assert [s["response"]["score"] for s in answers if s["response"]] == [9]
