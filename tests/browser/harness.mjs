// What every Chromium story shares: the real `portcullis serve` binary on a loopback port (on
// embedded SQLite, or a fresh PostgreSQL database when PORTCULLIS_TEST_POSTGRES_URL is set),
// a real SMTP sink (aiosmtpd) that writes each message to a folder, Debian's Chromium, and the
// customer's authenticator app.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection, createServer } from "node:net";
import { createHmac } from "node:crypto";
import { chromium } from "playwright-core";

const BIN = process.env.PORTCULLIS_TEST_BIN || "target/debug/portcullis";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SCREENSHOT_DIR;

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** A fresh PostgreSQL database (for the second run), or undefined for embedded SQLite. */
export function postgresDatabase() {
  const base = process.env.PORTCULLIS_TEST_POSTGRES_URL;
  if (!base) return undefined;
  const name = `portcullis_it_browser_${process.pid}_${Date.now()}`;
  execFileSync("psql", ["-q", base, "-c", `CREATE DATABASE ${name}`]);
  return base.replace(/\/[^/]*$/, `/${name}`);
}

/** A real SMTP server on loopback (aiosmtpd) writing each message to `dir`. */
export async function startMailSink(dir) {
  const port = await freePort();
  const scripts = new URL("../../scripts/", import.meta.url).pathname;
  const child = spawn("python3", ["-m", "aiosmtpd", "-n", "-l", `127.0.0.1:${port}`, "-c", "smtp_sink.DirectoryHandler", dir],
    { env: { ...process.env, PYTHONPATH: scripts }, stdio: ["ignore", "ignore", "inherit"] });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const socket = createConnection(port, "127.0.0.1", () => { socket.end(); resolve(true); });
      socket.on("error", () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, stop: () => child.kill("SIGTERM") };
}

/** Waits for an e-mail whose text matches `pattern`; returns its plain text. */
export async function mailMatching(dir, pattern) {
  for (let i = 0; i < 150; i++) {
    for (const name of readdirSync(dir).filter((n) => n.endsWith(".txt")).sort()) {
      const text = readFileSync(join(dir, name), "utf8");
      if (pattern.test(text)) return text;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no e-mail matching ${pattern} arrived`);
}

/** The envelope recipients of the e-mail whose plain text is `text` (the sink's NNNNNN.eml
 * starts with them). */
export function recipientsOf(dir, text) {
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".txt"))) {
    if (readFileSync(join(dir, name), "utf8") === text) {
      return readFileSync(join(dir, name.replace(/\.txt$/, ".eml")), "utf8").split("\n")[0];
    }
  }
  throw new Error("no such e-mail");
}

/** The real binary on a free loopback port; `extraEnv` adds settings (e.g. shorter cool-downs). */
export async function startServer(databaseUrl, extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-browser-"));
  const mail = join(dir, "mail");
  const sink = await startMailSink(mail);
  const port = await freePort();
  const env = {
    ...process.env,
    PORTCULLIS_DATA_DIR: join(dir, "data"),
    PORTCULLIS_LISTEN: `127.0.0.1:${port}`,
    PORTCULLIS_PUBLIC_URL: `http://localhost:${port}`,
    PORTCULLIS_EXCHANGE_NAME: "Example Exchange",
    PORTCULLIS_LOG_LEVEL: "warn",
    PORTCULLIS_SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
    PORTCULLIS_SMTP_FROM: "Example Exchange Security <security@exchange.example>",
    PORTCULLIS_NOTIFY_INTERVAL_MS: "200",
    ...extraEnv,
  };
  if (databaseUrl) env.PORTCULLIS_DATABASE_URL = databaseUrl;
  for (const name of Object.keys(env)) {
    if (name.startsWith("PORTCULLIS_TEST_")) delete env[name];
  }
  const created = execFileSync(BIN, ["operators", "create", "--name", "browser-test", "--role", "admin"], { env });
  const token = JSON.parse(created.toString()).token;
  const child = spawn(BIN, ["serve"], { env, stdio: ["ignore", "inherit", "inherit"] });
  const base = `http://localhost:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const api = async (method, path, body) => {
    const response = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: response.status, json, text };
  };
  const stop = () => {
    child.kill("SIGTERM");
    sink.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { base, api, stop, mail };
}

/** RFC 6238 (SHA-1, six digits, 30 s) from a base32 secret: what the customer's phone does. */
export function totp(base32, atSeconds) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of base32.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(atSeconds / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(value).padStart(6, "0");
}

/** Debian's Chromium, headless, with nothing that reaches out of the machine. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Every script error, console error and failed response of `page`, as they happen. */
export function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  return errors;
}

/** Uncaught script errors and CSP violations (refusals a page shows are expected, so failed
 * responses and the console lines Chromium writes for them are not counted). */
export function watchScriptErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  return errors;
}

/** A virtual passkey authenticator in `page` (DevTools), as a laptop's built-in one. */
export async function withPasskeys(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
}

/** A page in its own context with a virtual passkey authenticator (user verification on). With
 * `bypassCSP` (for axe, which the pages' CSP rightly refuses) the policy is checked on the
 * responses instead; without it, the page runs under the CSP as served. */
export async function operatorPage(browser, bypassCSP = true) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP });
  const page = await context.newPage();
  await withPasskeys(context, page);
  return page;
}

/** Enrols the operator `name` from a fresh single-use link in `page`; returns the link. */
export async function enrolOperator(page, api, name) {
  const link = await api("POST", `/v1/operators/${name}/enrol-link`, {});
  if (link.status !== 201) throw new Error(link.text);
  await page.goto(link.json.url);
  if ((await page.textContent("#enrol-name")) !== name) throw new Error(`the link is not ${name}'s`);
  await page.click("#enrol");
  await page.waitForURL(/\/console$/);
  return link.json.url;
}

export async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}


const AXE = new URL("./node_modules/axe-core/axe.min.js", import.meta.url).pathname;

/** axe-core's serious and critical violations on `page` as it stands (WCAG 2.1 A and AA), as
 * "rule: first offending element" lines. The page's context must bypass the CSP, which would
 * rightly refuse the injected script. */
export async function accessibilityProblems(page) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, target: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) }));
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.target.join(", ")}`);
}
