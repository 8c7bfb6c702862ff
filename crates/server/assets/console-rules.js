// The console's rules page (served from the binary; the CSP allows no other script): the draft
// is checked as it is typed (/console/api/policy/validate), and a backtest of it
// (/console/api/policy/backtest) is drawn as a before/after table, per rule, with the decisions
// that change. Cancel aborts the request, which stops the replay on the server.
"use strict";

const form = document.getElementById("propose-form");
const editor = document.getElementById("policy-text");
const csrf = form.dataset.csrf;
let checking = null;
let running = null;

async function call(path, body, signal) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: JSON.stringify(body),
    signal,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const why = (data.error && `${data.error.message} (${data.error.code})`) || response.statusText;
    throw new Error(why);
  }
  return data;
}

function cell(row, text, label) {
  const td = document.createElement("td");
  td.textContent = text;
  if (label) td.dataset.label = label;
  row.appendChild(td);
  return td;
}

function table(id, headings, rows) {
  const box = document.createElement("div");
  box.className = "table-box";
  const t = document.createElement("table");
  t.className = "stack";
  t.id = id;
  const head = t.createTHead().insertRow();
  for (const h of headings) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  const body = t.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    r.forEach((value, i) => {
      if (value instanceof Node) {
        const td = document.createElement("td");
        td.dataset.label = headings[i];
        td.appendChild(value);
        tr.appendChild(td);
      } else {
        cell(tr, String(value), headings[i]);
      }
    });
  }
  box.appendChild(t);
  return box;
}

function usd(n) {
  return n.toLocaleString("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
}

async function validate() {
  const status = document.getElementById("validation");
  if (checking) checking.abort();
  checking = new AbortController();
  try {
    const v = await call("/console/api/policy/validate", { text: editor.value }, checking.signal);
    if (v.valid) {
      status.className = "ok";
      status.textContent = `Valid: ${v.rules} rule${v.rules === 1 ? "" : "s"} (${v.shadow_rules} shadow).`;
    } else {
      const e = v.error;
      const where = e.line ? ` at line ${e.line}, column ${e.column} of its condition` : "";
      status.className = "alert";
      status.textContent = `Not valid: rule ${e.rule}${where}: ${e.reason}`;
    }
  } catch (error) {
    if (error.name !== "AbortError") {
      status.className = "alert";
      status.textContent = "Could not check the draft: " + error.message;
    }
  }
}

let timer = null;
editor.addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(validate, 300);
});

function render(result) {
  const r = result.report;
  const b = r.before;
  const a = r.after;
  const out = document.getElementById("backtest-result");
  out.replaceChildren();
  const totals = [
    ["Events replayed", r.events, r.events],
    ["Decisions", b.decided, a.decided],
    ["Scam USD (withdrawals of confirmed accounts)", usd(b.scam_usd), usd(a.scam_usd)],
    ["Scam USD stopped", usd(b.scam_usd_stopped), usd(a.scam_usd_stopped)],
    ["Legitimate withdrawals", b.legit_withdrawals, a.legit_withdrawals],
    ["Legitimate withdrawals held", b.legit_withdrawals_held, a.legit_withdrawals_held],
    ["Legitimate withdrawals blocked", b.legit_withdrawals_blocked, a.legit_withdrawals_blocked],
    ["Decisions held / blocked", `${b.held} / ${b.blocked}`, `${a.held} / ${a.blocked}`],
  ];
  out.appendChild(table("backtest-totals", ["", "In force", "Draft"], totals));
  const rules = new Map();
  for (const x of b.rules) rules.set(x.rule, { before: x });
  for (const x of a.rules) rules.set(x.rule, Object.assign(rules.get(x.rule) || {}, { after: x }));
  const per = [];
  const show = (x, f) => (x ? f(x) : "–");
  for (const [rule, { before, after }] of rules) {
    const shadow = (after || before).shadow ? " (shadow)" : "";
    per.push([
      rule + shadow,
      show(before, (x) => x.hits), show(after, (x) => x.hits),
      show(before, (x) => x.held_or_blocked), show(after, (x) => x.held_or_blocked),
      show(before, (x) => x.confirmed), show(after, (x) => x.confirmed),
      show(before, (x) => usd(x.scam_usd_stopped)), show(after, (x) => usd(x.scam_usd_stopped)),
      show(before, (x) => x.legit_withdrawals_stopped), show(after, (x) => x.legit_withdrawals_stopped),
    ]);
  }
  const h3 = document.createElement("h3");
  h3.textContent = "Per rule (in force → draft)";
  out.appendChild(h3);
  out.appendChild(table("backtest-rules", ["Rule", "Hits", "Hits (draft)", "Held/blocked", "Held/blocked (draft)", "Confirmed fraud", "Confirmed (draft)", "Scam USD stopped", "Scam USD (draft)", "Legit stopped", "Legit (draft)"], per));
  const h3b = document.createElement("h3");
  h3b.textContent = `Decisions that change: ${r.changed}` + (r.changed > r.examples.length ? ` (the first ${r.examples.length})` : "");
  out.appendChild(h3b);
  const examples = r.examples.map((c) => {
    const link = document.createElement("a");
    link.href = "/console/accounts/" + encodeURIComponent(c.account);
    link.textContent = c.account;
    return [
      c.event_id, link, c.event_type, c.amount_usd == null ? "" : usd(c.amount_usd), c.scam ? "scam" : "legitimate",
      `${c.before} ${c.before_reasons.join(", ")}`, `${c.after} ${c.after_reasons.join(", ")}`,
    ];
  });
  out.appendChild(table("backtest-changes", ["Event", "Account", "Type", "Amount", "Truth", "In force", "Draft"], examples));
}

document.getElementById("backtest-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("backtest-status");
  const cancel = document.getElementById("backtest-cancel");
  running = new AbortController();
  cancel.disabled = false;
  status.textContent = "Backtesting…";
  const body = {
    text: editor.value,
    from: document.getElementById("backtest-from").value.trim(),
    to: document.getElementById("backtest-to").value.trim(),
    max_events: Number(document.getElementById("backtest-max").value) || undefined,
  };
  try {
    const result = await call("/console/api/policy/backtest", body, running.signal);
    render(result);
    status.textContent = `Backtest done: ${result.report.events} events, ${result.report.changed} decisions change.`;
  } catch (error) {
    status.textContent = error.name === "AbortError" ? "Backtest cancelled." : "Backtest refused: " + error.message;
  } finally {
    cancel.disabled = true;
    running = null;
  }
});

document.getElementById("backtest-cancel").addEventListener("click", () => {
  if (running) running.abort();
});

validate();
