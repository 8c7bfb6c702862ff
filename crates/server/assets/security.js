// The security center's one script (served from the binary; the CSP allows no other):
// live countdowns, and the WebAuthn ceremonies, which a browser can only run from script.
"use strict";

const b64url = {
  decode(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

async function call(path, csrf, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: JSON.stringify(body || {}),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error((data.error && data.error.message) || response.statusText);
  }
  return data;
}

function creationOptions(options) {
  const pk = options.publicKey;
  pk.challenge = b64url.decode(pk.challenge);
  pk.user.id = b64url.decode(pk.user.id);
  (pk.excludeCredentials || []).forEach((c) => { c.id = b64url.decode(c.id); });
  return { publicKey: pk };
}

function requestOptions(options) {
  const pk = options.publicKey;
  pk.challenge = b64url.decode(pk.challenge);
  (pk.allowCredentials || []).forEach((c) => { c.id = b64url.decode(c.id); });
  return { publicKey: pk };
}

function registration(credential) {
  return {
    id: credential.id,
    rawId: b64url.encode(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: b64url.encode(credential.response.attestationObject),
      clientDataJSON: b64url.encode(credential.response.clientDataJSON),
    },
    extensions: credential.getClientExtensionResults(),
  };
}

function assertion(credential) {
  const r = credential.response;
  return {
    id: credential.id,
    rawId: b64url.encode(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: b64url.encode(r.authenticatorData),
      clientDataJSON: b64url.encode(r.clientDataJSON),
      signature: b64url.encode(r.signature),
      userHandle: r.userHandle ? b64url.encode(r.userHandle) : null,
    },
    extensions: credential.getClientExtensionResults(),
  };
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
      label: "passkey",
    });
    status.textContent = "Passkey added.";
    window.location.reload();
  } catch (error) {
    status.textContent = "The passkey was not added: " + error.message;
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

async function grantFor(form, csrf) {
  if (form.dataset.method === "passkey") return passkeyGrant(csrf);
  const code = form.elements.code.value;
  return (await call("/security/api/step-up/totp", csrf, { code })).grant;
}

async function withPasskey(button, statusId, path, body) {
  const status = document.getElementById(statusId);
  const csrf = button.dataset.csrf;
  try {
    const grant = await passkeyGrant(csrf);
    await call(path, csrf, { ...body, step_up_grant: grant });
    window.location.href = "/security#pending";
    window.location.reload();
  } catch (error) {
    if (status) status.textContent = "Nothing was changed: " + error.message;
  }
}

async function addAddress(form) {
  const status = document.getElementById("address-status");
  const csrf = form.dataset.csrf;
  try {
    const grant = await grantFor(form, csrf);
    const field = (name) => form.elements[name].value;
    await call("/security/api/addresses", csrf, {
      address: field("address"), asset: field("asset"), network: field("network"), label: field("label"),
      step_up_grant: grant,
    });
    window.location.href = "/security#pending";
    window.location.reload();
  } catch (error) {
    status.textContent = "Nothing was changed: " + error.message;
  }
}

async function widen(form) {
  const status = document.getElementById("widen-status");
  const csrf = form.dataset.csrf;
  try {
    const grant = await grantFor(form, csrf);
    const scopes = Array.from(form.querySelectorAll("input[name=scope]:checked"), (i) => i.value);
    const ipAllowlist = form.elements.ip_allowlist.value.split(/\s+/).filter((line) => line);
    await call("/security/api/keys/" + form.dataset.key + "/change", csrf, {
      scopes, ip_allowlist: ipAllowlist, step_up_grant: grant,
    });
    window.location.href = "/security#pending";
  } catch (error) {
    status.textContent = "Nothing was changed: " + error.message;
  }
}

async function changeContact(form) {
  const status = document.getElementById("contact-status");
  const csrf = form.dataset.csrf;
  try {
    const grant = await grantFor(form, csrf);
    const body = { step_up_grant: grant };
    const email = form.elements.email.value.trim();
    const code = form.elements.anti_phishing_code.value.trim();
    // An empty code field keeps the current code; the address is always sent as shown.
    body.email = email;
    if (code) body.anti_phishing_code = code;
    await call("/security/api/contact", csrf, body);
    window.location.href = "/security#pending";
  } catch (error) {
    status.textContent = "Nothing was changed: " + error.message;
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
  if (unfreeze) unfreeze.addEventListener("click", () => withPasskey(unfreeze, "unfreeze-status", "/security/api/unfreeze", {}));
  for (const button of document.querySelectorAll("button.remove-passkey")) {
    button.addEventListener("click", () => withPasskey(button, "passkey-status", "/security/api/passkeys/" + button.dataset.id + "/remove", {}));
  }
  const contact = document.getElementById("contact-form");
  if (contact) contact.addEventListener("submit", (event) => { event.preventDefault(); changeContact(contact); });
  const address = document.getElementById("address-form");
  if (address) address.addEventListener("submit", (event) => { event.preventDefault(); addAddress(address); });
  tick();
  setInterval(tick, 1000);
});
