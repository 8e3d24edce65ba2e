"""End to end through headless Chromium, the real Kafka broker and the real dispatcher.

A passenger books through the gateway API, the driver's tablet page (logged in to
its vehicle, shift started by tapping) shows the new stop, the driver taps arrived,
boarded, arrived and alighted, and the passenger's live stream reports each step.
Idle at the drop-off, the vehicle is sent to a standby point (rebalancing on), which
the tablet shows with navigation. Then the driver taps the break button:
``break.requested@1`` reaches the dispatcher, whose next driver plan carries the
break back to the tablet.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, Route, async_playwright, expect

from tests.integration.conftest import PgSchema
from tests.integration.gateway_kit import PIN, Stream, bearer, services
from tests.integration.pipeline_kit import make_settings, running

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parents[2] / "out" / "artifacts"
TIMEOUT_MS = 30_000
#: the ride's destination: Fockbek, 5 km from the standby point in Rendsburg
FAR = "vs-fockbek-04"


async def _answer_late(route: Route) -> None:
    """Pass a request on, but hand its response to the page 2 s later."""
    response = await route.fetch()
    await asyncio.sleep(2)
    await route.fulfill(response=response)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; CI installs it (.ci/run), a laptop without it skips."""
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        from tests.integration.conftest import in_ci  # noqa: PLC0415

        if in_ci():
            pytest.fail("chromium is missing; apt-get install -y chromium")
        pytest.skip("chromium is missing; apt-get install -y chromium")
    return path


async def login(page: Page, base: str, vehicle_id: str) -> None:
    await page.goto(base)
    await page.fill("#vehicle", vehicle_id)
    await page.fill("#driver", "driver-7")
    await page.fill("#pin", PIN)
    await page.click("#login")
    await expect(page.locator("#work-view")).to_be_visible()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "on")


async def token(page: Page) -> str:
    session = await page.evaluate("window.localStorage.getItem('drt.session')")
    value: str = json.loads(session)["token"]
    return value


async def test_booking_to_drop_off_through_the_driver_tablet(
    kafka_bootstrap: str, topic_prefix: str, pg_schema: PgSchema, chromium: str
) -> None:
    """Booking, plan on the tablet, taps, and each step on the passenger's stream."""
    base = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    # rebalancing on: once idle, the vehicle is sent to the one standby point (Rendsburg)
    dispatch = base.dispatch.model_copy(update={"rebalance_points": 1, "rebalance_idle_s": 1.0})
    settings = base.model_copy(update={"dispatch": dispatch})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with (
        running(settings),
        services(settings) as (gateway, driver),
        httpx.AsyncClient(base_url=gateway, timeout=30) as client,
        async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            await login(page, driver, "bus-1")
            await page.click("#shift-start")
            await expect(page.locator("#shift-start")).to_be_disabled()

            passenger = (await client.post("/auth/passenger")).json()["token"]
            near = await client.get("/stops/nearby", params={"lat": 54.3157, "lon": 9.6778})
            origin = near.json()[0]["id"]
            booked = await client.post(
                "/rides",
                json={"origin": {"stop_id": origin}, "destination": {"stop_id": FAR}},
                headers={**bearer(passenger), "Idempotency-Key": "e2e-1"},
            )
            assert booked.status_code == 202, booked.text
            rid = booked.json()["request_id"]
            stream = Stream(client, f"/rides/{rid}/events", passenger)
            try:
                offer = await stream.until("offered")
                assert offer["vehicle_id"] == "bus-1"
                await stream.until("vehicle_assigned")
                confirmed = await client.post(f"/rides/{rid}/confirm", headers=bearer(passenger))
                assert confirmed.json()["status"] == "confirmed"

                first = page.get_by_test_id("stop-0")
                await expect(first).to_contain_text(rid)
                await expect(first).to_have_attribute("data-stop-id", origin)
                await expect(first.locator("a").first).to_have_attribute(
                    "href", re.compile(r"^geo:")
                )
                await expect(page.get_by_test_id(f"noshow-{rid}")).to_be_disabled()
                await page.screenshot(path=str(ARTIFACTS / "driver.png"), full_page=True)

                await page.get_by_test_id("arrived-0").click()
                await stream.until("vehicle_at_pickup")
                # The dispatcher answers the boarding within milliseconds; hold the
                # button's own answer back until its plan is on the tablet, as a slow
                # network would: the older view must not replace the newer plan.
                await page.route("**/boarded", _answer_late)
                async with page.expect_response("**/boarded"):
                    await page.get_by_test_id(f"boarded-{rid}").click()
                await stream.until("boarded")

                # The dispatcher's next plan has only the drop-off left.
                await expect(page.get_by_test_id(f"boarded-{rid}")).to_have_count(0)
                await expect(page.get_by_test_id("stop-0")).to_have_attribute("data-stop-id", FAR)
                await page.get_by_test_id("arrived-0").click()
                await stream.until("vehicle_at_destination")
                await page.get_by_test_id(f"alighted-{rid}").click()
                await stream.until("arrived")
                # Idle in Fockbek once the boarding and alighting times are over (about
                # 90 s after boarding): the next plan sends it to the standby point.
                standby = page.get_by_test_id("standby")
                await expect(standby).to_contain_text("Rendsburg Haltepunkt 24", timeout=180_000)
                await expect(standby.locator("a").first).to_have_attribute(
                    "href", re.compile(r"^geo:54\.307")
                )
                await expect(page.locator("#empty")).to_be_hidden()
                await page.screenshot(path=str(ARTIFACTS / "driver-standby.png"), full_page=True)

                # The break button reaches the dispatcher; its plan brings the break back.
                await page.click("#break")
                note = page.get_by_test_id("break-note")
                await expect(note).to_have_attribute("data-state", re.compile("planned|running"))
                await expect(page.locator("#break")).to_be_disabled()
                view = (
                    await client.get(
                        f"{driver}/api/vehicles/bus-1/plan", headers=bearer(await token(page))
                    )
                ).json()
                assert view["break"]["start"] is not None, view
                start = datetime.fromisoformat(view["break"]["start"])
                end = datetime.fromisoformat(view["break"]["end"])
                assert (end - start).total_seconds() == 30 * 60
                assert start <= datetime.now(UTC) + timedelta(minutes=60)
                await page.screenshot(path=str(ARTIFACTS / "driver-break.png"), full_page=True)

                await page.click("#lang")
                await expect(page.locator("#shift-end")).to_have_text("End shift")
                await page.screenshot(path=str(ARTIFACTS / "driver-done-en.png"), full_page=True)
            finally:
                await stream.close()
            kinds = stream.kinds()
            for step in ("requested", "offered", "vehicle_assigned", "confirmed"):
                assert step in kinds
            order = ["vehicle_at_pickup", "boarded", "vehicle_at_destination", "arrived"]
            assert [k for k in kinds if k in order] == order
        finally:
            await browser.close()
