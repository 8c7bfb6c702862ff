// The console's rules page, in real Chromium with virtual passkey authenticators, on embedded
// SQLite and PostgreSQL: an administrator edits the policy and sees it checked as she types
// (the rule and position of a mistake), backtests the draft over the stored history (the
// before/after table, per rule, and the decisions that change, checked against a count made
// here), proposes it; she cannot approve her own version; a second administrator, signed in on
// his own machine, approves it and it is in force; the versions and the audited steps name
// their operators (not their ids). Under the console's CSP, no script error.
//
//   PORTCULLIS_TEST_BIN=target/debug/portcullis node --test console-rules.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { accessibilityProblems, enrolOperator as enrol, launchBrowser, operatorPage, postgresDatabase, shot, startServer, watchScriptErrors } from "./harness.mjs";

const HEADER = "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n";
const rule = (id, when, score) => `[[rule]]\nid = "${id}"\ndescription = "x"\nwhen = "${when}"\nscore = ${score}\n`;
/** The draft: holds every withdrawal of at least 1,000 USD. */
const DRAFT = HEADER + rule("large_withdrawal", "amount_usd >= 1000.0", 60);

/** Withdrawals of the last hour: the victim's (confirmed as fraud afterwards) and an honest
 * customer's. */
const WITHDRAWALS = [
  ["vic", 1500], ["vic", 2500], ["vic", 400], ["hon", 1200], ["hon", 300], ["hon", 80],
];

async function feed(api) {
  const start = Date.now() - 60 * 60_000;
  const lines = WITHDRAWALS.map(([account, usd], n) => ({
    id: `bw${n}`, ts: new Date(start + n * 60_000).toISOString(), type: "withdrawal.requested", account,
    withdrawal_id: `bw${n}`, asset: "USDT", network: "TRX", address: `T${account}${n}`, amount: String(usd), amount_usd: usd,
    ctx: { ip: "198.51.100.9" },
  }));
  lines.push({ id: "bconf", ts: new Date(start + 30 * 60_000).toISOString(), type: "fraud.confirmed", account: "vic", note: "customer called" });
  const reply = await api("POST", "/v1/events", lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  assert.equal(reply.status, 200, reply.text);
}

async function story(databaseUrl) {
  const server = await startServer(databaseUrl);
  const browser = await launchBrowser();
  try {
    const { api, base } = server;
    const ids = {};
    for (const name of ["ada", "bob"]) {
      const created = await api("POST", "/v1/operators", { name, role: "admin" });
      assert.equal(created.status, 201, created.text);
      ids[name] = created.json.operator.id;
    }
    await feed(api);

    // Ada, under the console's CSP as it is served, opens the rules page.
    const ada = await operatorPage(browser, false);
    const adaErrors = watchScriptErrors(ada);
    await enrol(ada, api, "ada");
    await ada.click("#nav-rules");
    await ada.waitForURL(/\/console\/rules$/);
    assert.match(await ada.textContent("#in-force"), /configured policy/);
    await ada.waitForSelector("#validation.ok");
    assert.match(await ada.textContent("#validation"), /Valid: \d+ rules/);

    // She edits a rule: a half-typed condition is refused with its rule and position.
    await ada.fill("#policy-text", DRAFT.replace("amount_usd >= 1000.0", "amount_usd >="));
    await ada.waitForSelector("#validation.alert");
    assert.match(await ada.textContent("#validation"), /Not valid: rule large_withdrawal at line 1, column \d+/);
    await ada.fill("#policy-text", DRAFT);
    await ada.waitForSelector("#validation.ok");
    assert.match(await ada.textContent("#validation"), /Valid: 1 rule \(0 shadow\)/);

    // The backtest: the draft stops the victim's 1,500 and 2,500 and holds one honest 1,200.
    await ada.click("#backtest-run");
    await ada.waitForSelector("#backtest-totals");
    const row = async (label) => ada.locator("#backtest-totals tr", { hasText: label }).locator("td").allTextContents();
    const scam = WITHDRAWALS.filter(([a]) => a === "vic");
    const stopped = scam.filter(([, usd]) => usd >= 1000).reduce((sum, [, usd]) => sum + usd, 0);
    const total = scam.reduce((sum, [, usd]) => sum + usd, 0);
    const money = (n) => "$" + n.toLocaleString("en-US");
    assert.equal((await row("Scam USD (withdrawals"))[2], money(total));
    assert.equal((await row("Scam USD stopped"))[2], money(stopped));
    const honestHeld = WITHDRAWALS.filter(([a, usd]) => a === "hon" && usd >= 1000).length;
    assert.equal((await row("Legitimate withdrawals held"))[2], String(honestHeld));
    assert.equal((await row("Events replayed"))[1], String(WITHDRAWALS.length + 1));
    const rules = await ada.locator("#backtest-rules tr", { hasText: "large_withdrawal" }).locator("td").allTextContents();
    assert.equal(rules[2], "3", "its hits under the draft");
    assert.equal(rules[6], "2", "two of them on the confirmed account");
    assert.ok((await ada.locator("#backtest-changes tbody tr").count()) >= 1);
    assert.match(await ada.textContent("#backtest-status"), /Backtest done: 7 events/);
    await shot(ada, "console-rules");

    // She proposes it, and is offered no way to approve her own version.
    await ada.fill("#note", "hold every large withdrawal");
    await ada.click("#propose");
    await ada.waitForURL(/\/console\/rules$/);
    assert.equal(await ada.locator("#version-1").getAttribute("data-status"), "proposed");
    assert.match(await ada.locator("#version-1 td[data-label='Proposed']").textContent(), /^ada \(you\) · /);
    assert.equal(await ada.locator("#version-1 button.approve").count(), 0);
    assert.equal((await api("GET", "/v1/policy")).json.version, null, "not in force yet");

    // Bob, on his own machine, approves it: it is in force.
    const bob = await operatorPage(browser, true);
    const bobErrors = watchScriptErrors(bob);
    await enrol(bob, api, "bob");
    await bob.goto(`${base}/console/rules`);
    assert.deepEqual(await accessibilityProblems(bob), []);
    await bob.locator("#version-1 button.approve").click();
    await bob.waitForURL(/\/console\/rules$/);
    assert.equal(await bob.locator("#version-1").getAttribute("data-status"), "in force");
    assert.match(await bob.textContent("#in-force"), /version 1/);
    // Who proposed and who approved, by name (not by operator id).
    assert.match(await bob.locator("#version-1 td[data-label='Proposed']").textContent(), /^ada · /);
    assert.match(await bob.locator("#version-1 td[data-label='Approved']").textContent(), /^bob \(you\) · /);
    assert.ok(!(await bob.textContent("#version-1")).includes(ids.ada), "no operator id on the row");
    // The audited steps, each with its operator, on the page.
    const history = await bob.locator("#history tr.audit").allTextContents();
    assert.equal(history.length, 2, history.join(" | "));
    assert.match(history[0], /bob \(you\)policy\.publishedpolicy:v1/);
    assert.match(history[1], /adapolicy\.proposedpolicy:v1/);
    await shot(bob, "console-rules-published");
    const inForce = (await api("GET", "/v1/policy")).json;
    assert.equal(inForce.version, 1);
    assert.equal(inForce.text, DRAFT);

    const audit = (await api("GET", "/v1/audit?limit=1000")).json;
    const by = (action) => audit.filter((e) => e.action === action).map((e) => e.actor);
    assert.deepEqual(by("policy.proposed"), [ids.ada]);
    assert.deepEqual(by("policy.published"), [ids.bob]);
    assert.deepEqual(adaErrors, [], "no script error, no CSP violation");
    assert.deepEqual(bobErrors, []);
  } finally {
    await browser.close();
    server.stop();
  }
}

test("the rules page on embedded SQLite", async () => {
  await story(undefined);
});

test("the rules page on PostgreSQL", { skip: !process.env.PORTCULLIS_TEST_POSTGRES_URL && "PORTCULLIS_TEST_POSTGRES_URL is not set" }, async () => {
  await story(postgresDatabase());
});
