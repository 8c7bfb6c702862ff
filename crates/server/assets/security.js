// The security center's script (served from the binary; the CSP allows no other), after
// webauthn.js: live countdowns, and the WebAuthn ceremonies, which a browser can only run from
// script.
"use strict";

// Shows why nothing changed, in `status`; a missing authenticator comes with the way to add one.
function refused(status, error) {
  if (!status) return;
  status.textContent = "";
  if (error.code === "step_up_not_enrolled") {
    status.append("Nothing was changed: this change needs a passkey or an authenticator app, so that nobody else can make it in your name. ");
    const link = document.createElement("a");
    link.href = "/security#authenticators";
    link.textContent = "Set one up first";
    status.append(link, ".");
  } else if (error.code === "csrf_failed" || error.code === "signed_out") {
    status.append("Nothing was changed: this page is out of date (you signed in again or out since it was opened). ");
    const link = document.createElement("a");
    link.href = window.location.pathname;
    link.textContent = "Reload it";
    status.append(link, " and try again.");
  } else {
    status.append("Nothing was changed: " + error.message + ".");
  }
  status.focus();
}

async function addPasskey(button) {
  const status = document.getElementById("passkey-status");
  const csrf = button.dataset.csrf;
  try {
    // Once something is enrolled, adding a passkey is confirmed with it first.
    let grant = null;
    if (button.dataset.method === "passkey") {
      grant = await passkeyGrant(csrf);
    } else if (button.dataset.method === "totp") {
      const code = document.getElementById("passkey-code").value;
      grant = (await call("/security/api/step-up/totp", csrf, { code })).grant;
    }
    const started = await call("/security/api/passkeys/register/start", csrf, { step_up_grant: grant });
    const credential = await navigator.credentials.create(creationOptions(started.options));
    await call("/security/api/passkeys/register/finish", csrf, {
      ceremony_id: started.ceremony_id,
      credential: registration(credential),
      label: (document.getElementById("passkey-label").value || "").trim() || "passkey",
    });
    status.textContent = "Passkey added.";
    window.location.reload();
  } catch (error) {
    refused(status, error);
  }
}

// Once a passkey is enrolled, adding an authenticator app is confirmed with it first; the form
// then goes as the page post it is (its answer is the QR code's page), carrying the grant.
async function addTotp(form) {
  try {
    const grant = document.createElement("input");
    grant.type = "hidden";
    grant.name = "step_up_grant";
    grant.value = await passkeyGrant(form.dataset.csrf);
    form.append(grant);
    form.submit();
  } catch (error) {
    refused(document.getElementById("add-totp-status"), error);
  }
}

async function passkeyGrant(csrf) {
  const started = await call("/security/api/step-up/passkey/start", csrf, {});
  const credential = await navigator.credentials.get(requestOptions(started.options));
  const grant = await call("/security/api/step-up/passkey/finish", csrf, {
    ceremony_id: started.ceremony_id,
    credential: assertion(credential),
  });
  return grant.grant;
}

// The step-up for a change, asked for only after the server has checked the change at
// `checkPath` (so no code is spent on one it would refuse): a grant, or null when the change
// applies at once and needs none.
async function confirmFor(form, csrf, checkPath, body) {
  const method = (await call(checkPath, csrf, body)).step_up;
  if (method === "passkey") return passkeyGrant(csrf);
  if (method === "totp") {
    const field = form && form.querySelector("input[name=code]");
    const code = field ? field.value.trim() : "";
    if (!code) throw new Refusal("enter the six-digit code your authenticator app shows", "code_missing");
    return (await call("/security/api/step-up/totp", csrf, { code })).grant;
  }
  return null;
}

async function guardedButton(button, statusId, checkPath, path) {
  const status = document.getElementById(statusId);
  const csrf = button.dataset.csrf;
  try {
    const grant = checkPath ? await confirmFor(null, csrf, checkPath, {}) : await passkeyGrant(csrf);
    await call(path, csrf, { step_up_grant: grant });
    window.location.href = "/security#pending";
    window.location.reload();
  } catch (error) {
    refused(status, error);
  }
}

async function removeTotp(form) {
  const csrf = form.dataset.csrf;
  try {
    const grant = await confirmFor(form, csrf, "/security/api/account/remove-totp/check", {});
    await call("/security/api/account/remove-totp", csrf, { step_up_grant: grant });
    window.location.href = "/security#pending";
    window.location.reload();
  } catch (error) {
    refused(document.getElementById("remove-totp-status"), error);
  }
}

async function addAddress(form) {
  const status = document.getElementById("address-status");
  const csrf = form.dataset.csrf;
  const field = (name) => form.elements[name].value;
  const body = { address: field("address"), asset: field("asset"), network: field("network"), label: field("label") };
  try {
    const grant = await confirmFor(form, csrf, "/security/api/addresses/check", body);
    await call("/security/api/addresses", csrf, { ...body, step_up_grant: grant });
    window.location.href = "/security#pending";
    window.location.reload();
  } catch (error) {
    refused(status, error);
  }
}

// The time box the form asks for: undefined keeps the key's as it is, null removes it.
function fundWindow(form, scopes) {
  if (!scopes.includes("withdraw") && !scopes.includes("transfer")) return undefined;
  const choice = form.querySelector("input[name=window]:checked");
  if (!choice || choice.value === "keep") return undefined;
  if (choice.value === "permanent") return form.querySelector("input[name=window][value=keep]") ? null : undefined;
  const cap = form.elements.cap_usd.value.trim();
  return { hours: Number(form.elements.window_hours.value), cap_usd: cap ? Number(cap) : null };
}

async function widen(form) {
  const status = document.getElementById("widen-status");
  const csrf = form.dataset.csrf;
  const path = "/security/api/keys/" + form.dataset.key;
  const scopes = Array.from(form.querySelectorAll("input[name=scope]:checked"), (i) => i.value);
  const ipAllowlist = form.elements.ip_allowlist.value.split(/\s+/).filter((line) => line);
  const body = { scopes, ip_allowlist: ipAllowlist };
  const box = fundWindow(form, scopes);
  if (box !== undefined) body.fund_window = box;
  try {
    const grant = await confirmFor(form, csrf, path + "/check", body);
    const result = await call(path + "/change", csrf, { ...body, step_up_grant: grant });
    window.location.href = result.applied ? "/security?applied=1#keys" : "/security#pending";
  } catch (error) {
    refused(status, error);
  }
}

async function changeContact(form) {
  const status = document.getElementById("contact-status");
  const csrf = form.dataset.csrf;
  // An empty code field keeps the current code; the address is always sent as shown.
  const body = { email: form.elements.email.value.trim() };
  const code = form.elements.anti_phishing_code.value.trim();
  if (code) body.anti_phishing_code = code;
  try {
    const grant = await confirmFor(form, csrf, "/security/api/contact/check", body);
    const result = await call("/security/api/contact", csrf, { ...body, step_up_grant: grant });
    window.location.href = result.applied ? "/security" : "/security#pending";
  } catch (error) {
    refused(status, error);
  }
}

// Times are sent in UTC; each is shown in the reader's own time zone, with the UTC time on hover.
function localTimes() {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  for (const el of document.querySelectorAll("time.local")) {
    const utc = el.getAttribute("datetime");
    const at = new Date(utc);
    if (Number.isNaN(at.getTime())) continue;
    el.title = utc.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC");
    el.textContent = format.format(at);
  }
}

function tick() {
  for (const el of document.querySelectorAll("time.countdown")) {
    const left = Math.max(0, Date.parse(el.getAttribute("datetime")) - Date.now());
    const h = Math.floor(left / 3600000);
    const m = Math.floor((left % 3600000) / 60000);
    const s = Math.floor((left % 60000) / 1000);
    el.textContent = h + "h " + String(m).padStart(2, "0") + "m " + String(s).padStart(2, "0") + "s";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const add = document.getElementById("add-passkey");
  if (add) add.addEventListener("click", () => addPasskey(add));
  const form = document.getElementById("widen-form");
  if (form) form.addEventListener("submit", (event) => { event.preventDefault(); widen(form); });
  const unfreeze = document.getElementById("unfreeze");
  if (unfreeze) unfreeze.addEventListener("click", () => guardedButton(unfreeze, "unfreeze-status", "/security/api/account/unfreeze/check", "/security/api/account/unfreeze"));
  for (const button of document.querySelectorAll("button.remove-passkey")) {
    button.addEventListener("click", () => guardedButton(button, "passkey-status", null, "/security/api/passkeys/" + button.dataset.id + "/remove"));
  }
  const contact = document.getElementById("contact-form");
  if (contact) contact.addEventListener("submit", (event) => { event.preventDefault(); changeContact(contact); });
  const totp = document.getElementById("add-totp-form");
  if (totp && totp.dataset.method === "passkey") totp.addEventListener("submit", (event) => { event.preventDefault(); addTotp(totp); });
  const removal = document.getElementById("remove-totp-form");
  if (removal) removal.addEventListener("submit", (event) => { event.preventDefault(); removeTotp(removal); });
  const address = document.getElementById("address-form");
  if (address) address.addEventListener("submit", (event) => { event.preventDefault(); addAddress(address); });
  localTimes();
  tick();
  setInterval(tick, 1000);
});
