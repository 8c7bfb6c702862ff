// The analyst console's script (served from the binary, after webauthn.js; the CSP allows no
// other): enrolling a passkey from an enrolment link, and signing in with it.
"use strict";

function say(text) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.focus();
}

async function enrol(button) {
  const token = button.dataset.token;
  button.disabled = true;
  try {
    const started = await call("/console/api/enrol/start", "", { token });
    const credential = await navigator.credentials.create(creationOptions(started.options));
    const done = await call("/console/api/enrol/finish", "", {
      token,
      ceremony_id: started.ceremony_id,
      credential: registration(credential),
    });
    window.location.assign(done.redirect);
  } catch (error) {
    say("Not enrolled: " + error.message + ".");
    button.disabled = false;
  }
}

async function signIn(form) {
  const name = form.elements.name.value;
  try {
    const started = await call("/console/api/sign-in/start", "", { name });
    const credential = await navigator.credentials.get(requestOptions(started.options));
    const done = await call("/console/api/sign-in/finish", "", {
      ceremony_id: started.ceremony_id,
      credential: assertion(credential),
    });
    window.location.assign(done.redirect);
  } catch (error) {
    say("Not signed in: " + error.message + ".");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("enrol");
  if (button) button.addEventListener("click", () => enrol(button));
  const form = document.getElementById("sign-in");
  if (form) form.addEventListener("submit", (event) => { event.preventDefault(); signIn(form); });
});
