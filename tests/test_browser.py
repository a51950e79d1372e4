"""A handful of real-browser checks: headless Chromium (Debian's package) driven by Playwright.

Everything else is covered by the Django client (tests/test_pages.py), because the pages work
without JavaScript. These prove the htmx wiring and the copy button in a real browser, and save
screenshots of the list and detail pages to test-artifacts/ (gitignored).

CI installs the browser with `apt-get install -y chromium`; without /usr/bin/chromium these skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bindings import models as m
from tests.factories import load_scenario

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
    pytest.mark.django_db(transaction=True),
]

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs the playwright package (requirements-dev.txt)"
)


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread; Django's async-safety guard would
    # then refuse ORM calls made by the test itself.
    # Scoped to these tests: a leaked variable would fail `check --deploy` in other tests.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def sre(django_user_model):
    return django_user_model.objects.create_user("sre", "sre@example.invalid", "sre-password-1")


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    tab = context.new_page()
    yield tab
    context.close()


def _log_in(page, username: str = "sre", password: str = "sre-password-1") -> None:
    page.goto("/bindings/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/bindings/")


def test_it_finds_the_blocked_dns_binding_explains_it_and_copies_the_fix(page, sre, cluster):
    ARTIFACTS.mkdir(exist_ok=True)
    load_scenario(cluster)
    udp = m.TargetGroupBinding.objects.get(name="coredns-udp")

    # given a signed-in SRE on the bindings list
    _log_in(page)
    assert page.locator("table.bindings tbody tr").count() == 2

    # when she filters to blocked UDP bindings, only the table is swapped and the URL follows
    with page.expect_response(
        lambda r: "verdict=blocked" in r.url and r.request.headers.get("hx-request") == "true"
    ):
        page.get_by_label("Verdict").select_option("blocked")
    sync_api.expect(page.locator("table.bindings tbody tr")).to_have_count(1)
    assert "verdict=blocked" in page.url
    row = page.locator("table.bindings tbody tr")
    assert "coredns-udp" in row.inner_text()
    assert "UDP ✗ blocked" in row.locator(".badge").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "bindings-list.png"), full_page=True)

    # then the detail page shows the UDP path blocked and the health-check warning
    row.get_by_role("link", name="coredns-udp").click()
    page.wait_for_url(f"**/bindings/{udp.pk}/")
    assert page.locator(".hop-fail").first.is_visible()
    assert "fails here" in page.locator(".hop-fail").first.inner_text()
    assert "TCP 53 healthy proves nothing about UDP 53" in page.locator(".hc-warning").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "binding-detail.png"), full_page=True)

    # and the fix panel opens in place and copies the manifest
    page.get_by_role("link", name="Show fix").click()
    manifest = page.locator("#fix-manifest")
    manifest.wait_for()
    assert page.url.endswith(f"/bindings/{udp.pk}/")  # swapped in, not navigated
    page.get_by_role("button", name="Copy manifest").click()
    sync_api.expect(page.locator("button[data-copied]")).to_have_count(1)
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == manifest.inner_text()
    assert "kind: TargetGroupBinding" in copied and "protocol: UDP" in copied
    assert "Copied" in page.locator(".copy-status").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "fix-panel.png"), full_page=True)


def test_it_is_usable_on_a_phone(browser, live_server, sre, cluster):
    ARTIFACTS.mkdir(exist_ok=True)
    load_scenario(cluster)
    udp = m.TargetGroupBinding.objects.get(name="coredns-udp")
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    page = context.new_page()
    try:
        _log_in(page)
        page.goto(f"/bindings/{udp.pk}/")
        # No horizontal scrolling of the page itself: wide tables scroll inside their box.
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1
        assert page.locator(".hc-warning").first.is_visible()
        page.screenshot(path=str(ARTIFACTS / "binding-detail-phone.png"), full_page=True)
    finally:
        context.close()


def test_it_reaches_the_filters_and_rows_with_the_keyboard(page, sre, cluster):
    load_scenario(cluster)
    _log_in(page)

    page.keyboard.press("Tab")  # skip link first
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.get_by_label("Search").focus()
    page.keyboard.type("coredns-tcp")
    sync_api.expect(page.locator("table.bindings tbody tr")).to_have_count(1)
    page.locator("table.bindings a.name").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/bindings/*/")
    assert "coredns-tcp" in page.locator("h1").inner_text()


# --- the detail page leads with the cause, and follows an Apply live -------------------------------------


def _superuser(django_user_model):
    return django_user_model.objects.create_superuser("root-sre", "root@example.invalid", "root-password-1")


def test_the_detail_page_leads_with_the_root_cause_and_marks_a_disagreeing_probe(page, sre, cluster):
    load_scenario(cluster)
    udp = m.TargetGroupBinding.objects.get(name="coredns-udp")
    # A probe answered from the worker's position (as the demo's DNS probe does) while the rules
    # say blocked: the row is what bindings/services/probing.py writes after such a probe.
    m.ProbeResult.objects.create(
        binding=udp, protocol="UDP", kind="dns", address="127.0.0.1", port=53, status="ok", latency_ms=1.0
    )
    _log_in(page)

    page.goto(f"/bindings/{udp.pk}/")

    cause = page.locator(".causes .cause").first
    assert cause.locator(".cause-text").inner_text().startswith("UDP 53 blocked: sg-")
    assert "admits TCP 53 only; clients 10.0.0.0/16" in cause.inner_text()
    assert cause.get_by_role("link", name="Show fix").is_visible()
    marker = cause.locator(".probe-disagrees")
    assert marker.is_visible() and "probe disagrees" in marker.inner_text()
    assert "inside the VPC" in marker.inner_text()
    # Amber, not a green "ok" beside a red verdict.
    assert page.locator(".probes .probe-disagrees").is_visible()
    assert page.locator(".probes .probe-ok").count() == 0
    # The findings lead with the missing rule; the four findings restating it are folded.
    first = page.locator("ul.findings > li").first
    assert "MISSING_NETWORKING_RULE" in first.locator("p").first.inner_text()
    assert "4 consequences of this cause" in first.locator("details.consequences > summary").inner_text()


def test_no_fix_button_when_there_is_no_fix(page, sre, cluster):
    load_scenario(cluster)
    tcp = m.TargetGroupBinding.objects.get(name="coredns-tcp")
    _log_in(page)

    page.goto(f"/bindings/{tcp.pk}/")

    assert page.locator(".causes .cause-text").first.inner_text().startswith("TCP 53 reachable: ")
    assert page.get_by_role("link", name="Show fix").count() == 0
    assert "No automatic fix for this binding." in page.locator(".causes").inner_text()


def test_apply_waits_for_the_controller_then_turns_reachable_without_a_reload(
    page, live_demo, django_user_model
):
    from bindings.demo.emulated_controller import EmulatedController
    from bindings.services import polling

    ARTIFACTS.mkdir(exist_ok=True)
    d = live_demo
    d.cluster.allow_apply_fix = True
    d.cluster.save(update_fields=["allow_apply_fix"])
    polling.cluster_poll(cluster=d.cluster, trigger="test")
    polling.account_poll(account=d.account, trigger="test")
    udp = m.TargetGroupBinding.objects.get(name="coredns-udp")
    _superuser(django_user_model)
    _log_in(page, "root-sre", "root-password-1")
    page.goto(f"/bindings/{udp.pk}/")
    page.evaluate("() => { window.bhNoReload = true; }")

    # Show fix beside the blocked protocol, review the dry-run, apply it.
    page.locator(".causes .cause").first.get_by_role("link", name="Show fix").click()
    page.get_by_role("button", name="Preview the change (dry-run)").click()
    sync_api.expect(page.locator(".outcome-dry_run")).to_be_visible()
    assert "protocol: UDP" in page.locator("pre.diff").inner_text()
    page.get_by_role("button", name="Apply this change to demo").click()
    # The live region (not only the fix panel) says so, at once: the Apply answer triggers its refresh.
    waiting = page.locator(".causes > p.applied.waiting")
    sync_api.expect(waiting).to_contain_text("waiting for the controller")
    assert "Applied by root-sre at " in waiting.inner_text() and "next poll in ~" in waiting.inner_text()
    # A second dry-run is not offered while the controller has not caught up.
    sync_api.expect(page.get_by_role("link", name="Show fix")).to_have_count(0)

    # The controller writes the rule; the next poll judges UDP reachable; the page follows.
    report = EmulatedController(kube_url=d.kube.url, aws_endpoint=d.moto.url, cluster="demo").reconcile()
    assert [p.text() for _, p in report.authorized] == ["UDP 53 from 10.0.0.0/16"]
    polling.cluster_poll(cluster=d.cluster, trigger="test")
    polling.account_poll(account=d.account, trigger="test")

    cause = page.locator(".causes .cause-text").first
    sync_api.expect(cause).to_contain_text("UDP 53 reachable: 2 of 2 target(s)", timeout=25_000)
    assert page.evaluate("() => window.bhNoReload") is True
    sync_api.expect(page.locator(".causes > p.applied")).to_contain_text("judges it reachable")
    page.screenshot(path=str(ARTIFACTS / "walkthrough-end.png"), full_page=True)


def test_the_api_docs_work_from_local_assets_without_breaking_the_csp(page, live_server):
    violations: list[str] = []
    page.on(
        "console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None
    )
    remote: list[str] = []
    page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(live_server.url) else None)

    page.goto("/api/v1/docs")

    sync_api.expect(page.locator(".swagger-ui .info .title")).to_contain_text("Binding Health API")
    sync_api.expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert remote == [] and violations == []
