// `portcullis demo` as a newcomer meets it, in real Chromium with a virtual passkey
// authenticator: the demo binary (a small exchange, the live campaign at high speed) prints the
// console's address and an analyst's single-use enrolment link; she enrols a passkey from it,
// the queue shows campaign alerts and holds, a held item's case opens, and its network graph
// draws (cytoscape.js) with the entities around the account. Under the console's CSP, no
// script error. The demo ignores PORTCULLIS_* settings and makes its own embedded store, so
// this story runs once (no PostgreSQL run).
//
//   PORTCULLIS_TEST_BIN=target/debug/portcullis node --test demo.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { launchBrowser, operatorPage, shot, watchScriptErrors } from "./harness.mjs";

const BIN = process.env.PORTCULLIS_TEST_BIN || "target/debug/portcullis";

/** Starts the demo and resolves with its printed lines once the live campaign is over (or
 * rejects when it exits first or takes longer than `ms`). */
function startDemo(dir, ms) {
  const child = spawn(BIN, ["demo", "--listen", "127.0.0.1:0", "--dir", join(dir, "demo"),
    "--accounts", "600", "--days", "8", "--seed", "5", "--live-hours", "12", "--speed", "40000"],
  { env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "inherit"] });
  const lines = [];
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo took over ${ms} ms:\n${lines.join("\n")}`)), ms);
    createInterface({ input: child.stdout }).on("line", (line) => {
      lines.push(line);
      if (line.startsWith("the live campaign is over")) {
        clearTimeout(timer);
        resolve(lines);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${code}) early:\n${lines.join("\n")}`));
    });
  });
  return { child, done };
}

/** The text after `marker` on the first line that has it. */
function after(lines, marker) {
  const line = lines.find((l) => l.includes(marker));
  assert.ok(line, `no line with ${marker} in\n${lines.join("\n")}`);
  return line.slice(line.indexOf(marker) + marker.length).trim();
}

test("the demo, from its printed links to a case's network graph", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-demo-browser-"));
  const demo = startDemo(dir, 40_000);
  const browser = await launchBrowser();
  try {
    const lines = await demo.done;
    const consoleUrl = after(lines, "the console:");
    assert.match(consoleUrl, /^http:\/\/localhost:\d+\/console$/);
    const link = after(lines, "analyst alice: enrol a passkey (single use) at");
    assert.ok(link.startsWith(`${consoleUrl}/enrol/`), link);

    // Alice enrols from her link, under the console's CSP as served, and lands on the queue.
    const alice = await operatorPage(browser, false);
    const errors = watchScriptErrors(alice);
    await alice.goto(link);
    assert.equal(await alice.textContent("#enrol-name"), "alice");
    await alice.click("#enrol");
    await alice.waitForURL(/\/console$/);
    assert.match(await alice.textContent("#signed-in-as"), /alice/);

    // The queue: the campaign's alerts and the engine's holds, counted per state.
    assert.ok(await alice.locator("tr.item[data-kind='alert']").count() > 0, "campaign alerts");
    const held = alice.locator("tr.item[data-state='held']");
    assert.ok(await held.count() > 0, "holds");
    assert.match(await alice.textContent("#counts"), /held: [1-9]/);
    await shot(alice, "demo-queue");

    // A held item's case, then the network around its account.
    const account = await held.locator("a.case-link").first().textContent();
    await held.locator("a.case-link").first().click();
    await alice.waitForURL(new RegExp(`/console/accounts/${account}$`));
    assert.equal(await alice.textContent("#case-account"), account);
    assert.ok(await alice.locator("#timeline tr.entry").count() > 0, "a timeline");
    await alice.click("#open-graph");
    await alice.waitForSelector("#graph canvas");
    await alice.waitForSelector(`#graph-nodes li[data-node='account:${account}']`);
    assert.ok(await alice.locator("#graph-nodes li").count() >= 2, "the account and what it links to");
    await shot(alice, "demo-graph");
    assert.deepEqual(errors, [], "no script error, no CSP violation");
  } finally {
    await browser.close();
    demo.child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
});
