// The analyst console as a fraud team uses it, in real Chromium with DevTools' virtual
// authenticators, on embedded SQLite and PostgreSQL: two analysts enrol passkeys from single-use
// links and sign in with them; the queue (counts, filters, assigning); a case; a four-eyes
// release of a hold the risk engine made (self-approval refused, the second analyst completes);
// a confirmed campaign alert that holds a linked account's pending withdrawal address; a
// withdrawal the engine held, in the queue, released by two analysts from its case; and the network graph (cytoscape.js) under the CSP.
//
//   PORTCULLIS_TEST_BIN=target/debug/portcullis node --test console.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { accessibilityProblems, enrolOperator as enrol, launchBrowser, operatorPage, postgresDatabase, shot, startServer, totp, watchScriptErrors } from "./harness.mjs";

/** An account with a read/trade key, known from 203.0.113.7, an authenticator app, and a
 * step-up grant (the next time step's code). */
async function steppedUp(api, account) {
  assert.equal((await api("POST", "/v1/accounts", { id: account, email: `${account}@example.com` })).status, 201);
  const login = { id: `login-${account}`, ts: new Date().toISOString(), type: "login", account, method: "password", success: true, ctx: { ip: "203.0.113.7", channel: "web" } };
  assert.equal((await api("POST", "/v1/events", JSON.stringify(login) + "\n")).status, 200);
  const key = await api("POST", `/v1/accounts/${account}/keys`, { label: "bot", scopes: ["read", "trade"], ip_allowlist: ["203.0.113.7"] });
  assert.equal(key.status, 201, key.text);
  const started = await api("POST", `/v1/accounts/${account}/totp`, {});
  const secret = new URL(started.json.provisioning_uri).searchParams.get("secret");
  const now = Date.now() / 1000;
  assert.equal((await api("POST", `/v1/accounts/${account}/totp/confirm`, { code: totp(secret, now) })).status, 204);
  const grant = await api("POST", `/v1/accounts/${account}/step-up/totp`, { code: totp(secret, now + 30) });
  assert.equal(grant.status, 201, grant.text);
  return { keyId: key.json.key.key_id, grant: grant.json.grant };
}

async function story(databaseUrl) {
  const server = await startServer(databaseUrl);
  const browser = await launchBrowser();
  try {
    const { api, base } = server;
    const ids = {};
    for (const name of ["ana", "ben"]) {
      const created = await api("POST", "/v1/operators", { name, role: "analyst" });
      assert.equal(created.status, 201, created.text);
      ids[name] = created.json.operator.id;
    }
    // victim-2 asks to allow-list an address (pending); then three unrelated accounts withdraw
    // to that same address: a campaign alert.
    const victim = await steppedUp(api, "victim-2");
    const address = await api("POST", "/v1/accounts/victim-2/addresses", { address: "TQcampaign", asset: "USDT", network: "TRX", label: "new", step_up_grant: victim.grant });
    assert.equal(address.json.status, "pending", address.text);
    const addressChange = address.json.id;
    const ts = new Date().toISOString();
    for (const n of [1, 2, 3]) {
      assert.equal((await api("POST", "/v1/accounts", { id: `acc-${n}` })).status, 201);
    }
    const lines = [1, 2, 3].map((n) => JSON.stringify({ id: `w${n}`, ts, type: "withdrawal.requested", account: `acc-${n}`, withdrawal_id: `w${n}`, asset: "USDT", network: "TRX", address: "TQcampaign", amount: "100", amount_usd: 100 + n * 1000, ctx: { ip: `192.0.2.${n}` } }));
    assert.equal((await api("POST", "/v1/events", lines.join("\n") + "\n")).status, 200);
    // acc_x asks for withdraw during a phone call: the risk engine holds it.
    const caller = await steppedUp(api, "acc_x");
    const widen = await api("PATCH", `/v1/keys/${caller.keyId}`, { scopes: ["read", "trade", "withdraw"], step_up_grant: caller.grant, ctx: { call_active: true, channel: "app" } });
    assert.equal(widen.json.status, "held", widen.text);
    const heldChange = widen.json.id;

    // Ana enrols from her link and lands on the queue; the link works once.
    const ana = await operatorPage(browser);
    const anaErrors = watchScriptErrors(ana);
    const link = await enrol(ana, api, "ana");
    assert.match(await ana.textContent("#signed-in-as"), /ana/);
    await ana.goto(link);
    assert.match(await ana.textContent("#refusal"), /already used/);
    // Signed out, she signs in again with the passkey.
    await ana.goto(`${base}/console`);
    await ana.click("#sign-out");
    await ana.waitForURL(/\/console\/sign-in$/);
    await ana.fill("#operator-name", "ana");
    await ana.click("#sign-in-button");
    await ana.waitForURL(/\/console$/);

    const policy = (await fetch(`${base}/console/sign-in`)).headers.get("content-security-policy");
    assert.match(policy, /default-src 'none'; script-src 'self'; style-src 'self'/);

    // The queue: one alert and two open changes, counted per state; filters; assigning.
    assert.equal(await ana.locator("tr.item").count(), 3);
    assert.match(await ana.textContent("#counts"), /held: 1/);
    assert.match(await ana.textContent("#counts"), /open: 1/);
    assert.match(await ana.textContent("#counts"), /pending: 1/);
    assert.deepEqual(await accessibilityProblems(ana), []);
    await shot(ana, "console-queue");
    await ana.selectOption("#filter-kind", "alert");
    await ana.click("#apply-filters");
    await ana.waitForURL(/kind=alert/);
    assert.equal(await ana.locator("tr.item").count(), 1);
    const alertRow = ana.locator("tr.item[data-kind=alert]");
    await alertRow.locator("button.take").click();
    await ana.waitForURL(/kind=alert/);
    assert.equal(await ana.locator("tr.item[data-kind=alert] .assignee").textContent(), "ana");
    await ana.goto(`${base}/console?assignee=${ids.ana}`);
    assert.equal(await ana.locator("tr.item").count(), 1, "assigned to her: the alert");
    await ana.goto(`${base}/console?min_age=oops`);
    assert.match(await ana.textContent("#notice"), /whole number of minutes/);
    await ana.goto(`${base}/console?kind=change&sort=newest`);
    assert.equal(await ana.locator("tr.item").count(), 2);

    // The case of acc_x: the engine's hold with its reasons; Ana approves the release, and
    // cannot complete it herself.
    await ana.click("a.case-link >> text=acc_x");
    await ana.waitForURL(/\/console\/accounts\/acc_x$/);
    const row = ana.locator(`#change-${heldChange}`);
    assert.match(await row.textContent(), /held by risk-engine/);
    assert.match(await ana.textContent("#timeline"), /api_key.updated/);
    assert.match(await ana.textContent("#timeline"), /(hold|challenge) \(\d+\) call_during_escalation/, "the decision with its score and reasons");
    await row.locator("button.release").click();
    await ana.waitForURL(/\/console\/accounts\/acc_x$/);
    assert.match(await ana.textContent(`#approved-${heldChange}`), /approved by ana:/);
    assert.deepEqual(await accessibilityProblems(ana), []);
    await shot(ana, "console-case");
    await ana.locator(`#change-${heldChange} button.release`).click();
    assert.match(await ana.textContent("#notice"), /second operator.*second_operator_required/);
    assert.equal((await api("GET", `/v1/changes/${heldChange}`)).json.status, "held");

    // Ben, on his own machine, completes it.
    const ben = await operatorPage(browser);
    const benErrors = watchScriptErrors(ben);
    await enrol(ben, api, "ben");
    await ben.goto(`${base}/console/accounts/acc_x`);
    assert.match(await ben.textContent(`#change-${heldChange} button.release`), /Complete release \(2 of 2\)/);
    await ben.locator(`#change-${heldChange} button.release`).click();
    await ben.waitForURL(/\/console\/accounts\/acc_x$/);
    const released = (await api("GET", `/v1/changes/${heldChange}`)).json;
    assert.equal(released.status, "pending", "released: it applies when its cool-down ends");
    assert.equal(released.released_by, ids.ben);
    const timeline = await ben.textContent("#timeline");
    assert.match(timeline, /widening\.release_approved/);
    assert.match(timeline, /widening\.released/);

    // Ben confirms the campaign from the case of one of its accounts: the linked account's
    // pending withdrawal address is held, with the path as the reason.
    await ben.goto(`${base}/console/accounts/acc-1`);
    const entity = ben.locator("tr.link[data-entity='address:TQcampaign']");
    await entity.locator("input[name=note]").first().fill("crew wallet");
    await entity.locator("button.confirm-fraud").click();
    await ben.waitForURL(/\/console\/accounts\/acc-1$/);
    const held = (await api("GET", `/v1/changes/${addressChange}`)).json;
    assert.equal(held.status, "held", JSON.stringify(held));
    assert.match(held.status_detail, /network: address:TQcampaign > account:victim-2/);
    await ben.goto(`${base}/console/accounts/victim-2`);
    assert.match(await ben.textContent(`#change-${addressChange}`), /network: address:TQcampaign > account:victim-2/);
    assert.match(await ben.textContent("#timeline"), /widening\.network_held/);
    await shot(ben, "console-confirmed");
    // A withdrawal the engine holds (during a call, through the API from a fresh address, to a
    // new address, unusually large) joins the queue with its amount and rules.
    const next = { id: "w9", ts: new Date().toISOString(), type: "withdrawal.requested", account: "acc-2", withdrawal_id: "w9", asset: "USDT", network: "TRX", address: "TQelsewhere", amount: "9000", amount_usd: 9000, key_id: "k-acc2", ctx: { ip: "198.51.100.77", call_active: true } };
    assert.equal((await api("POST", "/v1/events", JSON.stringify(next) + "\n")).status, 200);
    const decided = (await api("GET", "/v1/decisions/w9")).json;
    assert.equal(decided.decision, "hold", JSON.stringify(decided));
    await ben.goto(`${base}/console?kind=withdrawal&min_amount=2000`);
    const withdrawal = ben.locator("tr.item[data-item='withdrawal:w9']");
    assert.equal(await ben.locator("tr.item").count(), 1);
    assert.match(await withdrawal.textContent(), /9000\.00 USD/);
    assert.match(await withdrawal.textContent(), /call_before_withdrawal/);
    // From the case, Ben approves releasing it and cannot complete it himself; Ana completes it.
    // It leaves the queue, and both steps are in the case's timeline.
    await withdrawal.locator("a.case-link").click();
    await ben.waitForURL(/\/console\/accounts\/acc-2$/);
    const heldRow = ben.locator("#withdrawal-w9");
    assert.match(await heldRow.textContent(), /9000 USDT .*TQelsewhere/);
    assert.match(await heldRow.locator("button.release").textContent(), /Approve release \(1 of 2\)/);
    await heldRow.locator("button.release").click();
    await ben.waitForURL(/\/console\/accounts\/acc-2$/);
    assert.match(await ben.textContent("#withdrawal-approved-w9"), /approved by ben:/);
    await shot(ben, "console-withdrawal-review");
    await ben.locator("#withdrawal-w9 button.release").click();
    assert.match(await ben.textContent("#notice"), /second operator.*second_operator_required/);
    assert.equal((await api("GET", "/v1/withdrawals/w9/review")).json.state, "approved");
    await ana.goto(`${base}/console/accounts/acc-2`);
    assert.match(await ana.textContent("#withdrawal-w9 button.release"), /Complete release \(2 of 2\)/);
    await ana.locator("#withdrawal-w9 button.release").click();
    await ana.waitForURL(/\/console\/accounts\/acc-2$/);
    const review = (await api("GET", "/v1/withdrawals/w9/review")).json;
    assert.deepEqual([review.state, review.approved_by, review.resolved_by], ["released", ids.ben, ids.ana]);
    assert.equal(await ana.locator("#withdrawal-w9").count(), 0);
    assert.match(await ana.textContent("#timeline"), /withdrawal\.release_approved[\s\S]*withdrawal\.released|withdrawal\.released[\s\S]*withdrawal\.release_approved/);
    await ana.goto(`${base}/console?kind=withdrawal`);
    assert.equal(await ana.locator("tr.item[data-item='withdrawal:w9']").count(), 0);

    // The network graph (cytoscape.js under the console's CSP, enforced in this context): expand
    // the campaign's address, see a linked account's mark and its path, jump to its case.
    const strict = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const viewer = await strict.newPage();
    const graphErrors = watchScriptErrors(viewer);
    await strict.addCookies((await ben.context().cookies()).filter((c) => c.name === "pc_console"));
    await viewer.goto(`${base}/console/accounts/acc-1`);
    await viewer.click("#open-graph");
    await viewer.waitForSelector("#graph-nodes li[data-node='address:TQcampaign']");
    await viewer.waitForSelector("#graph canvas");
    await viewer.click("#graph-nodes li[data-node='address:TQcampaign'] button.expand");
    await viewer.waitForSelector("#graph-nodes li[data-node='account:victim-2']");
    await viewer.click("#graph-nodes li[data-node='account:victim-2'] button.show");
    assert.match(await viewer.textContent("#node-detail"), /Confirmed fraud: address:TQcampaign > account:victim-2/);
    await shot(viewer, "console-graph");
    await viewer.click("#node-detail a.open-case");
    await viewer.waitForURL(/\/console\/accounts\/victim-2$/);
    assert.deepEqual(graphErrors, [], "no script error, no CSP violation");

    const audit = (await api("GET", "/v1/audit?limit=1000")).json;
    const by = (action) => audit.filter((e) => e.action === action).map((e) => e.actor);
    assert.deepEqual(by("widening.release_approved"), [ids.ana]);
    assert.deepEqual(by("widening.released"), [ids.ben]);
    assert.deepEqual(by("withdrawal.release_approved"), [ids.ben]);
    assert.deepEqual(by("withdrawal.released"), [ids.ana]);
    assert.deepEqual(by("alert.confirmed"), [ids.ben]);
    assert.deepEqual(by("console.assigned"), [ids.ana]);
    assert.deepEqual(anaErrors, []);
    assert.deepEqual(benErrors, []);
  } finally {
    await browser.close();
    server.stop();
  }
}

test("the analyst console on embedded SQLite", async () => {
  await story(undefined);
});

test("the analyst console on PostgreSQL", { skip: !process.env.PORTCULLIS_TEST_POSTGRES_URL && "PORTCULLIS_TEST_POSTGRES_URL is not set" }, async () => {
  await story(postgresDatabase());
});
