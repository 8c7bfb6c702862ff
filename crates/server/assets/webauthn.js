// What the security center's and the analyst console's scripts share (served from the binary;
// the CSP allows no other script): JSON posts with the anti-CSRF header, and the WebAuthn
// options and answers in the JSON shape webauthn-rs reads (binary fields as base64url).
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

// A refusal as the server (or the network) gave it: a message for the customer and a stable code.
class Refusal extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

async function call(path, csrf, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body || {}),
    });
  } catch {
    throw new Refusal("the page could not reach the server. Check your connection and try again", "network");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = data.error || {};
    throw new Refusal(error.message || response.statusText, error.code);
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
