// The customer security center in real Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; passkeys through the DevTools virtual authenticator), against the real
// `portcullis serve` binary on a loopback port, on embedded SQLite and, when
// PORTCULLIS_TEST_POSTGRES_URL is set, on a fresh PostgreSQL database.
//
//   PORTCULLIS_TEST_BIN=target/debug/portcullis node --test security-center.test.mjs
//
// With SCREENSHOT_DIR set, each step leaves a screenshot there (the docs' pictures).

import { test } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, mailMatching, postgresDatabase, recipientsOf, shot, startServer, totp, watchErrors } from "./harness.mjs";

async function story(databaseUrl) {
  const server = await startServer(databaseUrl);
  const browser = await launchBrowser();
  try {
    const { api } = server;
    assert.equal((await api("POST", "/v1/accounts", { id: "acc_b", email: "ada@example.com", anti_phishing_code: "Blue42" })).status, 201);
    const login = { id: "l1", ts: new Date().toISOString(), type: "login", account: "acc_b", method: "password", success: true, ctx: { ip: "203.0.113.7", channel: "web" } };
    assert.equal((await api("POST", "/v1/events", JSON.stringify(login) + "\n")).status, 200);
    const key = await api("POST", "/v1/accounts/acc_b/keys", { label: "grid bot", scopes: ["read", "trade"], ip_allowlist: ["203.0.113.7"] });
    assert.equal(key.status, 201, key.text);
    const keyId = key.json.key.key_id;

    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });

    // Sign in through a link the exchange minted; a GET alone signs nobody in.
    const link = await api("POST", "/v1/accounts/acc_b/sign-in-links");
    assert.equal(link.status, 201, link.text);
    await page.goto(link.json.url);
    await page.click("#continue");
    await page.waitForURL(/\/security$/);
    assert.equal(await page.textContent("#anti-phishing-code"), "Blue42");
    const csp = (await page.request.get(page.url())).headers()["content-security-policy"];
    assert.match(csp, /script-src 'self'/);
    await shot(page, "overview");
    const reused = await fetch(link.json.url, { method: "POST", redirect: "manual" });
    assert.notEqual(reused.status, 303, "a sign-in link opens one session only");

    // Enrol an authenticator app from its QR code page, then add a passkey confirmed with it.
    await page.click("#add-totp");
    await page.waitForSelector("#totp-qr svg");
    await shot(page, "totp");
    const secret = await page.textContent("#totp-secret");
    const now = Date.now() / 1000;
    await page.fill("input[name=code]", totp(secret, now));
    await page.click("#confirm-totp");
    await page.waitForURL(/\/security$/);
    assert.match(await page.textContent("#authenticators"), /Authenticator app \(TOTP\): enrolled/);
    // The next time step's code (the confirmation's step is spent).
    await page.fill("#passkey-code", totp(secret, now + 30));
    await page.click("#add-passkey");
    await page.waitForSelector("#passkey-list li.passkey");
    const passkeys = await api("GET", "/v1/accounts/acc_b/passkeys");
    assert.equal(passkeys.json.length, 1, passkeys.text);


    // Widen the key: the warning comes first, then the passkey step-up.
    await page.click(`#key-${keyId} a.change-key`);
    await page.waitForSelector("#scam-warning");
    assert.match(await page.textContent("#scam-warning"), /never call or message you/);
    await shot(page, "widen-warning");
    await page.check("input[value=withdraw]");
    await page.click("#confirm-widen");
    await page.waitForURL(/\/security#pending$/);
    const pending = page.locator("#pending li.change[data-status=pending]");
    await pending.waitFor();
    const countdown = pending.locator("time.countdown");
    const first = await countdown.textContent();
    assert.match(first, /^2[34]h \d\dm \d\ds$/, first);
    await page.waitForTimeout(1500);
    assert.notEqual(await countdown.textContent(), first, "the countdown is live");
    await shot(page, "pending-change");
    const before = await api("GET", `/v1/keys/${keyId}`);
    assert.deepEqual(before.json.scopes, ["read", "trade"], "nothing applies before the cool-down");
    const changes = await api("GET", "/v1/accounts/acc_b/changes");
    assert.equal(changes.json[0].step_up, "passkey");
    assert.equal(changes.json[0].status, "pending");

    // The announcement arrives by e-mail with the anti-phishing code and a cancel link;
    // cancelling from that link leaves the key unchanged.
    const mail = await mailMatching(server.mail, /allow withdrawals/);
    assert.match(mail, /Blue42/, "the anti-phishing code is in the e-mail");
    const cancelUrl = mail.match(/https?:\/\/\S+\/cancel\/pcx_[A-Za-z0-9]+/)[0];
    await page.goto(cancelUrl);
    await shot(page, "cancel-link");
    await page.click("button.danger");
    await page.waitForSelector("text=The change is cancelled");
    const after = await api("GET", `/v1/keys/${keyId}`);
    assert.deepEqual(after.json.scopes, ["read", "trade"]);
    assert.equal((await api("GET", "/v1/accounts/acc_b/changes")).json[0].status, "cancelled");
    await page.goto(new URL("/security", cancelUrl).href);
    await page.waitForSelector("#history li.change[data-status=cancelled]");

    // Changing the e-mail address is guarded like a widening: the warning first, the passkey,
    // then a pending change; the OLD address is told, with a cancel and a freeze link, and the
    // cancel link from that e-mail undoes it.
    await page.click("#change-contact");
    await page.waitForSelector("#scam-warning");
    assert.match(await page.textContent("#scam-warning"), /never call or message you to ask for\s+this/);
    await shot(page, "contact-warning");
    await page.fill("input[name=email]", "ada@attacker.example");
    await page.click("#confirm-contact");
    await page.waitForURL(/\/security#pending$/);
    const contactPending = page.locator("#pending li.change[data-status=pending]", { hasText: "ada@attacker.example" });
    await contactPending.waitFor();
    assert.match(await contactPending.locator("time.countdown").textContent(), /^2[34]h \d\dm \d\ds$/);
    assert.equal(await contactPending.locator("button.cancel").count(), 1, "a cancel button, as for other changes");
    const contactChange = (await api("GET", "/v1/accounts/acc_b/changes")).json[0];
    assert.equal(contactChange.kind, "contact_change", JSON.stringify(contactChange));
    assert.equal(contactChange.step_up, "passkey");
    assert.equal((await api("GET", "/v1/accounts/acc_b")).json.email, "ada@example.com", "nothing applies before the cool-down");
    const contactMail = await mailMatching(server.mail, /about to change/);
    assert.match(recipientsOf(server.mail, contactMail), /ada@example\.com/, "told to the old address");
    assert.doesNotMatch(recipientsOf(server.mail, contactMail), /attacker/);
    assert.match(contactMail, /^Your anti-phishing code: Blue42/);
    assert.match(contactMail, /\/freeze\/pfz_[A-Za-z0-9]+/, "with a freeze link");
    const contactCancel = contactMail.match(/https?:\/\/\S+\/cancel\/pcx_[A-Za-z0-9]+/)[0];
    await page.goto(contactCancel);
    await page.click("button.danger");
    await page.waitForSelector("text=The change is cancelled");
    assert.equal((await api("GET", `/v1/changes/${contactChange.id}`)).json.status, "cancelled");
    assert.equal((await api("GET", "/v1/accounts/acc_b")).json.email, "ada@example.com");
    await page.goto(new URL("/security", contactCancel).href);
    await page.waitForSelector(`#change-${contactChange.id}[data-status=cancelled]`);

    // Freeze from the page.
    await page.click("#freeze");
    await page.waitForSelector("#frozen-banner");
    await shot(page, "frozen");
    const protection = await api("GET", "/v1/accounts/acc_b/protection");
    assert.equal(protection.json.frozen, true, protection.text);

    // Lifting the freeze takes the passkey and its own cool-down.
    await page.click("#unfreeze");
    await page.waitForSelector("#pending li.change[data-status=pending]");
    const unfreeze = (await api("GET", "/v1/accounts/acc_b/changes")).json[0];
    assert.equal(unfreeze.kind, "unfreeze");
    assert.equal(unfreeze.step_up, "passkey");
    assert.equal((await api("GET", "/v1/accounts/acc_b/protection")).json.frozen, true, "still frozen during the cool-down");
    assert.match(await page.textContent("#activity"), /Account frozen/, "the activity lists the freeze, in plain words");

    // Removing a passkey takes a passkey step-up.
    await page.locator("button.remove-passkey").first().click();
    await page.waitForFunction(() => document.querySelectorAll("#passkey-list li.passkey").length === 0);
    assert.equal((await api("GET", "/v1/accounts/acc_b/passkeys")).json.length, 0);
    assert.deepEqual(errors, [], "no script or CSP errors on the pages");
    const audit = await api("GET", "/v1/audit/verify");
    assert.equal(audit.json.intact, true, audit.text);
  } finally {
    await browser.close();
    server.stop();
  }
}

/** "Is this really the exchange?": the public page and the security center's, with the report
 * button, as a worried customer uses them. */
async function contactsStory(databaseUrl) {
  const server = await startServer(databaseUrl);
  const browser = await launchBrowser();
  try {
    const { api, base } = server;
    for (const entry of [
      { kind: "domain", value: "exchange.example", note: "our website" },
      { kind: "phone", value: "+44 20 7946 0958", note: "24/7 support line" },
    ]) {
      assert.equal((await api("POST", "/v1/contacts/official", entry)).status, 201);
    }
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);

    // The public page: no sign-in, no script.
    const opened = await page.goto(`${base}/verify`);
    assert.match(opened.headers()["content-security-policy"], /default-src 'none'/);
    assert.doesNotMatch(opened.headers()["content-security-policy"], /script-src/);
    await page.fill("#contact-value", "(+44) 020 7946 0958");
    await page.click("#contact-check");
    await page.waitForSelector("#contact-answer[data-verdict=official]");
    const official = await page.textContent("#contact-answer");
    assert.match(official, /we never call you from it/);
    assert.match(official, /not that a message is genuine/);
    await shot(page, "verify-official");

    await page.fill("#contact-value", "https://exchange-support.com/login");
    await page.click("#contact-check");
    await page.waitForSelector("#contact-answer[data-verdict=lookalike]");
    assert.match(await page.textContent("#contact-headline"), /NOT Example Exchange/);
    assert.equal(await page.textContent("#contact-imitates"), "exchange.example");
    await page.selectOption("#report-channel", "sms");
    await page.fill("#report-claimed", "Example Exchange refunds");
    await page.click("#contact-report");
    await page.waitForSelector("#contact-reported");
    await shot(page, "verify-reported");
    // What a page shows is escaped, never markup.
    const markup = "https://evil.example/\"><b id=injected>x</b>";
    await page.fill("#contact-value", markup);
    await page.click("#contact-check");
    await page.waitForSelector("#contact-answer[data-verdict=not_official]");
    assert.equal(await page.locator("#injected").count(), 0);
    assert.equal(await page.inputValue("#contact-value"), markup);

    // Signed in: the security center's page, and a report in the customer's own name.
    assert.equal((await api("POST", "/v1/accounts", { id: "acc_v", email: "vera@example.com" })).status, 201);
    const link = await api("POST", "/v1/accounts/acc_v/sign-in-links");
    await page.goto(link.json.url);
    await page.click("#continue");
    await page.waitForURL(/\/security$/);
    await page.click("#verify-contact");
    await page.waitForURL(/\/security\/verify$/);
    await page.fill("#contact-value", "+44 7700 900123");
    await page.click("#contact-check");
    await page.waitForSelector("#contact-answer[data-verdict=not_official]");
    await page.selectOption("#report-channel", "phone");
    await page.click("#contact-report");
    await page.waitForSelector("#contact-reported");

    const reports = (await api("GET", "/v1/contacts/reports")).json;
    const linkReport = reports.find((r) => r.value === "exchange-support.com");
    assert.equal(linkReport.public_reports, 1, JSON.stringify(reports));
    assert.equal(linkReport.last_channel, "sms");
    assert.equal(linkReport.last_claimed, "Example Exchange refunds");
    const call = reports.find((r) => r.value === "+447700900123");
    assert.equal(call.reports, 1, JSON.stringify(reports));
    const events = (await api("GET", "/v1/events?limit=1000")).json.map((e) => e.event).filter((e) => e.type === "contact.reported");
    assert.deepEqual(events.map((e) => e.account), ["~public", "acc_v"]);
    assert.equal(events[1].from, "+44 7700 900123");
    assert.deepEqual(errors, [], "no errors on the pages");

    // A value that cannot be checked is said so, with a 400.
    await page.fill("#contact-value", "xn--a.example");
    const [refused] = await Promise.all([page.waitForResponse((r) => r.request().method() === "POST"), page.click("#contact-check")]);
    assert.equal(refused.status(), 400);
    assert.match(await page.textContent("#contact-error"), /punycode/);
    // A report posted from another site carries no page token: refused.
    const forged = await fetch(`${base}/verify/report`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "csrf=x&value=%2B447700900123" });
    assert.equal(forged.status, 403);
    assert.equal((await api("GET", "/v1/audit/verify")).json.intact, true);
  } finally {
    await browser.close();
    server.stop();
  }
}

test("is this really the exchange? on embedded SQLite", async () => {
  await contactsStory(undefined);
});

test("is this really the exchange? on PostgreSQL", { skip: !process.env.PORTCULLIS_TEST_POSTGRES_URL && "PORTCULLIS_TEST_POSTGRES_URL is not set" }, async () => {
  await contactsStory(postgresDatabase());
});

test("security center on embedded SQLite", async () => {
  await story(undefined);
});

test("security center on PostgreSQL", { skip: !process.env.PORTCULLIS_TEST_POSTGRES_URL && "PORTCULLIS_TEST_POSTGRES_URL is not set" }, async () => {
  await story(postgresDatabase());
});
