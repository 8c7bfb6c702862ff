// The security center's tools in real Chromium at 1280 px and 390 px, on embedded SQLite and
// PostgreSQL: the check-up's findings each fixed by its own button, an authenticator app added
// beside a passkey only through the passkey's step-up, the settings lock confirmed
// with the date spelled out, revoking a key, the activity in plain words a page at a time, and
// axe-core on every page the center and its links show (no serious or critical violation).
//
//   PORTCULLIS_TEST_BIN=target/debug/portcullis node --test center-tools.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { accessibilityProblems, launchBrowser, mailMatching, postgresDatabase, shot, startServer, totp, withPasskeys } from "./harness.mjs";

const WIDTHS = [1280, 390];
const DAY = 86_400_000;

async function fits(page, what) {
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(scroll <= inner, `${what}: the page is ${scroll} px wide in a ${inner} px window`);
}

/** Runs axe-core on the page as it stands and remembers what it found, by page. */
function auditor() {
  const found = [];
  return {
    async check(page, name) {
      for (const problem of await accessibilityProblems(page)) found.push(`${name}: ${problem}`);
    },
    found,
  };
}

async function tools(databaseUrl, width) {
  // Adding `withdraw` waits no time here, so that a key can be seen with it applied.
  // This story posts more forms than one customer would in a minute (the limits have their
  // own tests), so the account's burst is raised.
  const server = await startServer(databaseUrl, {
    PORTCULLIS_COOLDOWN_WITHDRAW_MINUTES: "0",
    PORTCULLIS_RATE_LIMIT_ACCOUNT_BURST: "60",
  });
  const browser = await launchBrowser();
  const tag = width < 600 ? "-phone" : "";
  try {
    const { api, base } = server;
    assert.equal((await api("POST", "/v1/accounts", { id: "acc_t", email: "tara@example.com", anti_phishing_code: "Oak12" })).status, 201);
    const login = { id: "l1", ts: new Date().toISOString(), type: "login", account: "acc_t", method: "password", success: true, ctx: { ip: "203.0.113.9", channel: "web" } };
    assert.equal((await api("POST", "/v1/events", JSON.stringify(login) + "\n")).status, 200);
    const made = async (body) => {
      const key = await api("POST", "/v1/accounts/acc_t/keys", body);
      assert.equal(key.status, 201, key.text);
      return key.json.key.key_id;
    };
    const payout = await made({ label: "payout bot", scopes: ["read"], ip_allowlist: ["203.0.113.9"] });
    const viewer = await made({ label: "viewer", scopes: ["read"] });
    // Enough history for a second page of activity.
    for (let i = 0; i < 12; i++) await api("POST", "/v1/accounts/acc_t/sign-in-links");

    const context = await browser.newContext({ viewport: { width, height: 900 }, bypassCSP: true });
    const page = await context.newPage();
    await withPasskeys(context, page);
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const axe = auditor();

    const link = await api("POST", "/v1/accounts/acc_t/sign-in-links");
    await page.goto(link.json.url);
    await axe.check(page, "sign-in");
    await page.click("#continue");
    await page.waitForURL(/\/security$/);
    await fits(page, "overview");
    await axe.check(page, "overview");

    // The daily digest: switched on at an hour of the customer's choosing and announced; off
    // again, announced too (it is the customer's daily sign of life).
    await page.selectOption("#digest-hour", "7");
    await page.click("#digest-start");
    await page.waitForURL(/\/security$/);
    assert.match(await page.textContent("#digest-on"), /07:00 UTC/);
    assert.match(await mailMatching(server.mail, /security digest every day at 07:00 UTC/), /^Your anti-phishing code: Oak12/);
    assert.equal((await api("GET", "/v1/accounts/acc_t/digest")).json.hour_utc, 7);
    await axe.check(page, "overview with the digest on");
    await page.click("#digest-off");
    await page.waitForURL(/\/security$/);
    assert.equal(await page.locator("#digest-start").count(), 1);
    assert.match(await mailMatching(server.mail, /digest was switched off/), /freeze your account/);
    assert.equal((await api("GET", "/v1/accounts/acc_t/digest")).status, 404);

    // A passkey, named by the customer.
    await page.fill("#passkey-label", "my laptop");
    await page.click("#add-passkey");
    await page.waitForSelector("#passkey-list li.passkey");
    assert.match(await page.textContent("#passkey-list"), /my laptop/);

    // `withdraw` added with the passkey (applied at once here: no cool-down configured).
    await page.click(`#key-${payout} a.change-key`);
    await page.check("input[value=withdraw]");
    // The page proposes a time box; this customer insists on "until I remove it".
    assert.equal(await page.isChecked("input[name=window][value=boxed]"), true);
    await page.check("input[name=window][value=permanent]");
    await page.click("#confirm-widen");
    await page.waitForURL(/\/security#pending$/);
    for (let i = 0; i < 100 && !(await api("GET", `/v1/keys/${payout}`)).json.scopes.includes("withdraw"); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual((await api("GET", `/v1/keys/${payout}`)).json.scopes, ["read", "withdraw"]);

    // The check-up: a key that can withdraw and never expires is a finding whose button takes
    // `withdraw` away at once.
    await page.goto(`${base}/security`);
    assert.ok(Number(await page.textContent("#score")) < 100);
    const withdrawFinding = page.locator("li.finding[data-finding=withdraw_key]");
    assert.match(await withdrawFinding.textContent(), /'payout bot' can withdraw and never expires/);
    await withdrawFinding.locator("button.fix").click();
    await page.waitForURL(/\/security$/);
    assert.deepEqual((await api("GET", `/v1/keys/${payout}`)).json.scopes, ["read"]);
    assert.equal(await page.locator("li.finding[data-finding=withdraw_key]").count(), 0);
    assert.match(await page.textContent("#history"), /Applied.*key 'payout bot'/s, "a closed change names the key by its label");

    // A pending widening (a new address) keeps the score below 100, and its finding's button
    // cancels it.
    await page.fill("#address-form input[name=address]", "TXa1b2c3d4e5f6g7h8i9j0kLmNoPqRsTuV");
    await page.fill("#address-form input[name=asset]", "USDT");
    await page.fill("#address-form input[name=network]", "TRX");
    await page.click("#add-address");
    await page.waitForSelector("#pending li.change[data-status=pending]");
    assert.match(await mailMatching(server.mail, /TXa1b2c3d4e5f6g7h8i9j0kLmNoPqRsTuV/), /^Your anti-phishing code: Oak12/);
    await fits(page, "overview with a pending change");
    await axe.check(page, "overview with a pending change");
    await shot(page, `overview-pending${tag}`);
    const pendingFinding = page.locator("li.finding[data-finding=pending_widening]");
    assert.match(await pendingFinding.textContent(), /TXa1b2c3d4e5f6g7h8i9j0kLmNoPqRsTuV/);
    assert.ok(Number(await page.textContent("#score")) < 100, "never full marks while a widening waits");
    await pendingFinding.locator("button.fix").click();
    await page.waitForSelector("#history li.change[data-status=cancelled]");
    assert.equal(await page.locator("li.finding[data-finding=pending_widening]").count(), 0);

    // An authenticator app added beside the passkey: the page runs the passkey step-up before
    // its form goes (a second factor is confirmed with the first). Then removed: confirmed with
    // the passkey, and it waits out a cool-down like a widening (it takes a protection away).
    await page.click("#add-totp");
    await page.waitForSelector("#totp-qr svg");
    const enrolments = (await api("GET", "/v1/audit?limit=1000")).json.filter((e) => e.action === "totp.enrolment_started");
    assert.deepEqual(enrolments.map((e) => e.details.step_up), ["passkey"], JSON.stringify(enrolments));
    await axe.check(page, "authenticator app");
    await page.fill("input[name=code]", totp(await page.textContent("#totp-secret"), Date.now() / 1000));
    await page.click("#confirm-totp");
    await page.waitForURL(/\/security$/);
    await page.click("#remove-totp");
    const removal = page.locator("#pending li.change[data-status=pending]", { hasText: "remove your authenticator app" });
    await removal.waitFor();
    const removalChange = (await api("GET", "/v1/accounts/acc_t/changes")).json[0];
    assert.equal(removalChange.kind, "remove_totp", JSON.stringify(removalChange));
    assert.equal(removalChange.step_up, "passkey");
    assert.match(await page.textContent("#authenticators"), /Authenticator app \(TOTP\): enrolled/, "still there during the cool-down");
    await removal.locator("button.cancel").click();
    await page.waitForSelector(`#history #change-${removalChange.id}[data-status=cancelled]`);

    // The widen page and the contact page.
    await page.click(`#key-${viewer} a.change-key`);
    await fits(page, "widen page");
    await axe.check(page, "widen");
    await page.goto(`${base}/security/contact`);
    await axe.check(page, "contact");

    // The settings lock: the date spelled out, confirmed, then in force.
    await page.goto(`${base}/security`);
    const until = new Date(Date.now() + 10 * DAY).toISOString().slice(0, 10);
    const spelled = new Intl.DateTimeFormat("en-GB", { weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC" })
      .format(new Date(`${until}T00:00:00Z`)).replace(",", "");
    await page.fill("input[name=until]", until);
    await page.click("#lock button[type=submit]");
    await page.waitForSelector("#confirm-lock");
    assert.equal(await page.textContent("h1"), `Lock your settings until ${spelled}?`);
    assert.equal((await api("GET", "/v1/accounts/acc_t/protection")).json.locked_until, null, "nothing locked before the confirmation");
    await fits(page, "lock confirmation");
    await axe.check(page, "lock confirmation");
    await shot(page, `lock-confirm${tag}`);
    await page.click("#confirm-lock");
    await page.waitForURL(/\/security$/);
    assert.match(await page.textContent("#locked-until"), new RegExp(spelled));
    assert.match((await api("GET", "/v1/accounts/acc_t/protection")).json.locked_until, new RegExp(`^${until}`));

    // Revoke a key from the center.
    await page.click(`#key-${viewer} details.revoke summary`);
    await page.click(`#key-${viewer} button.revoke-key`);
    await page.waitForURL(/\/security$/);
    assert.equal((await api("GET", `/v1/keys/${viewer}`)).json.status, "revoked");

    // Activity in plain words, a page at a time.
    const activity = await page.textContent("#activity table");
    assert.match(activity, /Signed in to the security center/);
    assert.match(activity, /Settings locked/);
    assert.match(activity, /API key revoked/);
    assert.doesNotMatch(activity, /[a-z]+_[a-z]+|\w\.\w+ /, "no audit ids");
    assert.equal(await page.locator("#activity tbody tr").count(), 20);
    await page.click("#activity-older");
    await page.waitForURL(/activity=1#activity$/);
    assert.ok(await page.locator("#activity tbody tr").count() > 0);
    assert.equal(await page.locator("#activity-newer").count(), 1);
    await axe.check(page, "activity page 2");

    // The pages of links and refusals.
    await page.goto(`${base}/cancel/pcx_${"x".repeat(43)}`);
    await axe.check(page, "invalid link");
    await page.goto(`${base}/verify`);
    await axe.check(page, "public verify");
    await page.click("footer a[href='/guides/phone-scam']");
    await page.waitForURL(/\/guides\/phone-scam$/);
    await axe.check(page, "a guide");
    await shot(page, `guide-phone-scam${tag}`);
    await page.goto(`${base}/guides`);
    await axe.check(page, "the guides");
    await page.goto(`${base}/security/verify`);
    await axe.check(page, "center verify");
    await shot(page, `center-verify${tag}`);
    const freezeUrl = (await mailMatching(server.mail, /\/freeze\/pfz_/)).match(/https?:\/\/\S+\/freeze\/pfz_[A-Za-z0-9]+/)[0];
    await page.goto(freezeUrl);
    await axe.check(page, "freeze link");
    await page.click("button.danger");
    await page.waitForSelector("h1");
    assert.equal(await page.title(), "Your account is frozen · Example Exchange");
    await axe.check(page, "frozen by link");
    await page.goto(`${base}/security`);
    await page.waitForSelector("#frozen-banner");
    await axe.check(page, "frozen overview");
    await page.click("form[action='/security/sign-out'] button");
    await page.waitForSelector("h1");
    await axe.check(page, "signed out");
    await page.goto(`${base}/security`);
    assert.equal(await page.title(), "You are signed out · Example Exchange");

    assert.deepEqual(axe.found, [], "no serious or critical accessibility violation");
    assert.deepEqual(errors, [], "no script errors");
    assert.equal((await api("GET", "/v1/audit/verify")).json.intact, true);
  } finally {
    await browser.close();
    server.stop();
  }
}

const pg = !process.env.PORTCULLIS_TEST_POSTGRES_URL && "PORTCULLIS_TEST_POSTGRES_URL is not set";

for (const width of WIDTHS) {
  test(`center tools and accessibility at ${width} px on embedded SQLite`, async () => {
    await tools(undefined, width);
  });
  test(`center tools and accessibility at ${width} px on PostgreSQL`, { skip: pg }, async () => {
    await tools(postgresDatabase(), width);
  });
}
