// The security center as a customer under pressure uses it, in real Chromium at a desktop width
// (1280 px) and a phone's (390 px), on embedded SQLite and PostgreSQL: forms with no
// authenticator, validation before any code is spent, a change held by the risk engine, a tab
// left open across sign-ins, the error pages of links, and a held withdrawal cancelled.
//
//   PORTCULLIS_TEST_BIN=target/debug/portcullis node --test center-flows.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, mailMatching, postgresDatabase, shot, startServer, totp, watchScriptErrors } from "./harness.mjs";

const WIDTHS = [1280, 390];

/** Fails when the page is wider than the window (something runs off a phone's screen). */
async function assertFits(page, what) {
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(scroll <= inner, `${what}: the page is ${scroll} px wide in a ${inner} px window`);
}

/** Waits until `selector`'s text matches `pattern`; fails with the text it had. */
async function textMatching(page, selector, pattern) {
  try {
    await page.waitForFunction(([sel, source]) => new RegExp(source).test(document.querySelector(sel)?.textContent || ""), [selector, pattern.source], { timeout: 10000 });
  } catch {
    assert.fail(`${selector} never matched ${pattern}: ${JSON.stringify(await page.textContent(selector).catch(() => null))}`);
  }
  return page.textContent(selector);
}

async function signIn(page, api, account, body) {
  const link = await api("POST", `/v1/accounts/${account}/sign-in-links`, body);
  assert.equal(link.status, 201, link.text);
  await page.goto(link.json.url);
  await page.click("#continue");
  await page.waitForURL(/\/security$/);
  return link.json.url;
}

async function scopesOf(api, keyId) {
  return (await api("GET", `/v1/keys/${keyId}`)).json.scopes;
}

/** The flows of a customer who has no authenticator yet, then enrols one while "support" is on
 * the phone: a narrowing at once, a widening that says what is missing, validation before the
 * code, a hold explained, a stale tab, and the pages of bad links. */
async function flows(databaseUrl, width) {
  const server = await startServer(databaseUrl);
  const browser = await launchBrowser();
  const tag = width < 600 ? "-phone" : "";
  try {
    const { api, base } = server;
    assert.equal((await api("POST", "/v1/accounts", { id: "acc_n", email: "nia@example.com", anti_phishing_code: "Fern7" })).status, 201);
    assert.equal((await api("POST", "/v1/accounts", { id: "acc_o", email: "other@example.com" })).status, 201);
    // The account is known from 203.0.113.7 (the exchange's login event), so the allow-list
    // below names no new network.
    const login = { id: "l1", ts: new Date().toISOString(), type: "login", account: "acc_n", method: "password", success: true, ctx: { ip: "203.0.113.7", channel: "web" } };
    assert.equal((await api("POST", "/v1/events", JSON.stringify(login) + "\n")).status, 200);
    const key = await api("POST", "/v1/accounts/acc_n/keys", { label: "grid bot", scopes: ["read", "trade"], ip_allowlist: ["203.0.113.7"] });
    assert.equal(key.status, 201, key.text);
    const keyId = key.json.key.key_id;
    const other = await api("POST", "/v1/accounts/acc_o/keys", { label: "theirs", scopes: ["read"] });
    const otherKey = other.json.key.key_id;

    const context = await browser.newContext({ viewport: { width, height: 900 } });
    const page = await context.newPage();
    const errors = watchScriptErrors(page);
    // The exchange says a phone call is in progress (its own telephony sees it).
    const signInUrl = await signIn(page, api, "acc_n", { ctx: { call_active: true, channel: "web" } });
    await assertFits(page, "overview");

    // No authenticator: taking a permission away applies at once, with no step-up.
    await page.click(`#key-${keyId} a.change-key`);
    await page.waitForSelector("#needs-authenticator");
    await assertFits(page, "widen page");
    await page.uncheck("input[value=trade]");
    await page.click("#confirm-widen");
    await page.waitForURL(/\/security\?applied=1#keys$/);
    assert.deepEqual(await scopesOf(api, keyId), ["read"], "the narrowing applied at once");
    assert.equal((await api("GET", "/v1/accounts/acc_n/changes")).json.length, 0, "no pending change for a narrowing");

    // A widening says plainly that an authenticator is needed, and links to adding one.
    await page.click(`#key-${keyId} a.change-key`);
    await page.check("input[value=withdraw]");
    await page.click("#confirm-widen");
    await textMatching(page, "#widen-status", /needs a passkey or an authenticator app/);
    assert.equal(await page.locator("#widen-status a[href='/security#authenticators']").count(), 1);
    await shot(page, `needs-authenticator${tag}`);
    assert.deepEqual(await scopesOf(api, keyId), ["read"]);

    // Another account's key id: refused without naming that account.
    const csrf = await page.getAttribute("#widen-form", "data-csrf");
    const probe = await page.evaluate(async ([id, token]) => {
      const r = await fetch(`/security/api/keys/${id}/check`, { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": token }, body: JSON.stringify({ scopes: ["read"], ip_allowlist: [] }) });
      return { status: r.status, text: await r.text() };
    }, [otherKey, csrf]);
    assert.equal(probe.status, 404, probe.text);
    assert.doesNotMatch(probe.text, /acc_o/, "an error never names another account");

    // Enrol an authenticator app.
    await page.goto(`${base}/security`);
    await page.click("#add-totp");
    const secret = await page.textContent("#totp-secret");
    const now = Date.now() / 1000;
    await page.fill("input[name=code]", totp(secret, now));
    await page.click("#confirm-totp");
    await page.waitForURL(/\/security$/);

    // Validation comes before the step-up: a network error, then `withdraw` with no allow-list,
    // are refused and the code typed is not spent (the same code then confirms the corrected
    // change).
    const code = totp(secret, now + 30);
    await page.click(`#key-${keyId} a.change-key`);
    await page.check("input[value=withdraw]");
    await page.fill("textarea[name=ip_allowlist]", "");
    await page.fill("input[name=code]", code);
    // The network drops first: said so, and nothing is spent.
    await context.setOffline(true);
    await page.click("#confirm-widen");
    await textMatching(page, "#widen-status", /could not reach the server/);
    await context.setOffline(false);
    await page.click("#confirm-widen");
    await textMatching(page, "#widen-status", /allow-list/i);
    await page.fill("textarea[name=ip_allowlist]", "203.0.113.7");
    // The page proposes a time box for withdraw: 24 hours unless changed; here with a cap too.
    assert.equal(await page.isChecked("input[name=window][value=boxed]"), true, "time-boxed by default");
    await page.fill("input[name=window_hours]", "6");
    await page.fill("input[name=cap_usd]", "500");
    await page.click("#confirm-widen");
    await page.waitForURL(/\/security#pending$/);
    const changes = (await api("GET", `/v1/accounts/acc_n/changes`)).json;
    const asked = changes.find((c) => c.action.key_id === keyId && c.action.fund_window);
    assert.deepEqual(asked.action.fund_window, { duration_ms: 6 * 3600000, cap: 50000 }, "6 hours, up to 500 USD");

    // During the call the risk engine holds it: explained in plain words, with a cancel button
    // and no time promised.
    const held = page.locator("#pending li.change[data-status=held]");
    await held.waitFor();
    const heldText = await held.textContent();
    assert.match(heldText, /On hold for review/);
    assert.match(heldText, /during a phone call/, "what was seen, in plain words");
    assert.match(heldText, /will ever call or message you to "release" it/);
    assert.match(heldText, /official\s+website or app/);
    assert.doesNotMatch(heldText, /call_during_escalation|challenge without/, "no rule ids");
    assert.equal(await held.locator("time.countdown").count(), 0, "no countdown for a held change");
    await assertFits(page, "overview with a held change");
    await shot(page, `held-change${tag}`);
    const heldMail = await mailMatching(server.mail, /is on hold/);
    assert.match(heldMail, /^Your anti-phishing code: Fern7/);
    assert.doesNotMatch(heldMail, /Takes effect/, "a held change promises no time");
    assert.match(heldMail, /What we saw: The change was made during a phone call/);
    assert.match(heldMail, /Nobody from the exchange will ever call or message you to release it/);
    assert.match(heldMail, /\/freeze\/pfz_[A-Za-z0-9]+/, "with a freeze link");
    // The cancel link from the first announcement no longer promises a time either.
    const pendingMail = await mailMatching(server.mail, /allow withdrawals/);
    assert.match(pendingMail, /key 'grid bot'/, "the e-mail names the key by its label");
    const cancelUrl = pendingMail.match(/https?:\/\/\S+\/cancel\/pcx_[A-Za-z0-9]+/)[0];
    const cancelPage = await context.newPage();
    await cancelPage.goto(cancelUrl);
    const cancelText = await cancelPage.textContent("main");
    assert.match(cancelText, /on hold for review/);
    assert.doesNotMatch(cancelText, /takes effect on/);
    assert.match(cancelText, /key 'grid bot'/);
    assert.match(await cancelPage.textContent("#seen"), /phone call/);
    await cancelPage.close();
    // Cancel it from the center: it moves to the history.
    await held.locator("button.cancel").click();
    await page.waitForSelector("#history li.change[data-status=cancelled]");
    assert.match(await page.textContent("#history"), /Cancelled.*cancelled by you/s);
    assert.equal(await page.locator("#pending li.change").count(), 0);
    assert.deepEqual(await scopesOf(api, keyId), ["read"]);

    // A tab opened before another sign-in: Freeze still works from it (a narrowing).
    const staleFreeze = await context.newPage();
    await staleFreeze.goto(`${base}/security`);
    await signIn(page, api, "acc_n");
    await staleFreeze.click("#freeze");
    await staleFreeze.waitForSelector("#frozen-banner");
    assert.equal((await api("GET", "/v1/accounts/acc_n/protection")).json.frozen, true, "frozen from a stale tab");
    await staleFreeze.close();

    // Links that were used, or never existed: HTML pages that say which, with a way back.
    await page.goto(signInUrl);
    await page.click("#continue");
    assert.equal(await page.title(), "This link was already used · Example Exchange");
    assert.match(await page.textContent("#back"), /security center from Example Exchange's app/);
    await page.goto(`${base}/cancel/pcx_${"x".repeat(43)}`);
    assert.equal(await page.title(), "This link is not valid · Example Exchange");
    await assertFits(page, "link refusal");
    await shot(page, `link-invalid${tag}`);
    assert.deepEqual(errors, [], "no script or CSP errors on the pages");
    assert.equal((await api("GET", "/v1/audit/verify")).json.intact, true);
  } finally {
    await browser.close();
    server.stop();
  }
}

/** A tab's CSRF token from an earlier session, on a form that widens nothing but is not a
 * narrowing either: a page titled for what happened, and nothing changed. */
async function staleForm(databaseUrl) {
  const server = await startServer(databaseUrl);
  const browser = await launchBrowser();
  try {
    const { api, base } = server;
    assert.equal((await api("POST", "/v1/accounts", { id: "acc_s", email: "sam@example.com" })).status, 201);
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, api, "acc_s");
    const stale = await context.newPage();
    await stale.goto(`${base}/security`);
    await signIn(page, api, "acc_s");
    await stale.click("#add-totp");
    await stale.waitForSelector("h1");
    assert.equal(await stale.title(), "This page was out of date · Example Exchange");
    await stale.click("#back");
    await stale.waitForURL(/\/security$/);
    await stale.click("#add-totp");
    await stale.waitForSelector("#totp-qr svg");
  } finally {
    await browser.close();
    server.stop();
  }
}

/** A withdrawal the risk engine held (from a server an administrator forced as a crew's), on
 * a phone: shown with the warning, and cancelled with one button; the exchange's API says so. */
async function heldWithdrawal(databaseUrl) {
  const server = await startServer(databaseUrl);
  const browser = await launchBrowser();
  try {
    const { api, base } = server;
    assert.equal((await api("POST", "/v1/accounts", { id: "acc_w", email: "wes@example.com", anti_phishing_code: "Oak3" })).status, 201);
    const event = (id, type, fields) => JSON.stringify({ id, ts: new Date().toISOString(), type, account: "acc_w", ...fields, ctx: { ip: "198.51.100.66", channel: "web" } });
    assert.equal((await api("POST", "/v1/events", event("wl1", "login", { method: "password", success: true }) + "\n")).status, 200);
    assert.equal((await api("POST", "/v1/graph/ip/198.51.100.66/override", { action: "force", note: "crew server" })).status, 201);
    const withdrawal = event("ww1", "withdrawal.requested", { withdrawal_id: "w_1", asset: "USDT", network: "TRX", address: "TQcrew", amount: "40", amount_usd: 40 });
    assert.equal((await api("POST", "/v1/events", withdrawal + "\n")).status, 200);
    assert.equal((await api("GET", "/v1/decisions/ww1")).json.decision, "hold");

    const page = await (await browser.newContext({ viewport: { width: 390, height: 900 } })).newPage();
    const errors = watchScriptErrors(page);
    await signIn(page, api, "acc_w");
    const held = page.locator("#withdrawal-ww1");
    assert.match(await held.textContent(), /40 USDT .*TQcrew/s);
    assert.match(await held.textContent(), /will ever call or message you to "release" a withdrawal/);
    await assertFits(page, "a held withdrawal");
    await shot(page, "center-held-withdrawal-phone");
    await held.locator("button.cancel-withdrawal").click();
    await page.waitForURL(/\/security$/);
    assert.equal(await page.locator("#withdrawal-ww1").count(), 0);
    const review = (await api("GET", "/v1/withdrawals/ww1/review")).json;
    assert.deepEqual([review.state, review.resolved_by], ["cancelled", "customer:acc_w"]);
    assert.match(await page.textContent("#activity"), /A held withdrawal was cancelled/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.stop();
  }
}

const pg = !process.env.PORTCULLIS_TEST_POSTGRES_URL && "PORTCULLIS_TEST_POSTGRES_URL is not set";

for (const width of WIDTHS) {
  test(`center flows at ${width} px on embedded SQLite`, async () => {
    await flows(undefined, width);
  });
  test(`center flows at ${width} px on PostgreSQL`, { skip: pg }, async () => {
    await flows(postgresDatabase(), width);
  });
}

test("a stale tab's form on embedded SQLite", async () => {
  await staleForm(undefined);
});

test("a stale tab's form on PostgreSQL", { skip: pg }, async () => {
  await staleForm(postgresDatabase());
});

test("a held withdrawal cancelled on a phone, on embedded SQLite", async () => {
  await heldWithdrawal(undefined);
});

test("a held withdrawal cancelled on a phone, on PostgreSQL", { skip: pg }, async () => {
  await heldWithdrawal(postgresDatabase());
});
