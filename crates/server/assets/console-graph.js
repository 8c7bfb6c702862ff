// The console's network graph (served from the binary, after cytoscape.min.js; the CSP allows
// no other script): the graph around an entity, expanded node by node from
// /console/api/graph, each node's marks and provenance beside it, accounts linking to their
// case. The list under the drawing holds the same nodes, for the keyboard and screen readers.
"use strict";

const KIND_COLOURS = { account: "#1d4ed8", address: "#7c3aed", ip: "#0f766e", device: "#a16207", number: "#be185d" };
const nodes = new Map();
let cy = null;

function nodeId(kind, value) {
  return kind + ":" + value;
}

function say(text) {
  document.getElementById("graph-status").textContent = text;
}

function when(ms) {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

/** Adds what the server returned around one node; returns how many nodes were new. */
function merge(view) {
  let added = 0;
  for (const n of view.nodes) {
    const id = nodeId(n.kind, n.value);
    if (!nodes.has(id)) added += 1;
    nodes.set(id, n);
    if (cy.getElementById(id).empty()) {
      cy.add({ group: "nodes", data: { id, label: n.value, kind: n.kind, marked: n.mark ? "yes" : "no" } });
    } else {
      cy.getElementById(id).data("marked", n.mark ? "yes" : "no");
    }
  }
  for (const e of view.edges) {
    const id = nodeId("account", e.account) + ">" + nodeId(e.kind, e.value);
    if (cy.getElementById(id).empty() && nodes.has(nodeId("account", e.account)) && nodes.has(nodeId(e.kind, e.value))) {
      cy.add({ group: "edges", data: { id, source: nodeId("account", e.account), target: nodeId(e.kind, e.value), link: e.link } });
    }
  }
  return added;
}

async function expand(id) {
  const n = nodes.get(id) || { kind: id.slice(0, id.indexOf(":")), value: id.slice(id.indexOf(":") + 1) };
  const response = await fetch(`/console/api/graph/${encodeURIComponent(n.kind)}/${encodeURIComponent(n.value)}?hops=1`, { credentials: "same-origin" });
  const data = await response.json().catch(() => ({}));
  if (!response.ok || !Array.isArray(data.nodes)) {
    // A session that ended is answered with the sign-in page, not the graph.
    const why = (data.error && data.error.message) || (response.ok ? "you are signed out; sign in again" : response.statusText);
    say("Could not expand " + id + ": " + why + ".");
    return;
  }
  const added = merge(data);
  cy.layout({ name: "cose", animate: false }).run();
  renderList();
  say(`Expanded ${id}: ${added} new node${added === 1 ? "" : "s"}${data.truncated ? " (truncated)" : ""}.`);
}

function line(parent, label, text) {
  const p = document.createElement("p");
  const b = document.createElement("strong");
  b.textContent = label + ": ";
  p.append(b, text);
  parent.append(p);
}

function show(id) {
  const n = nodes.get(id);
  const panel = document.getElementById("node-detail");
  panel.textContent = "";
  const h = document.createElement("h2");
  h.textContent = id;
  panel.append(h);
  if (!n) return;
  if (n.mark) {
    line(panel, "Confirmed fraud", n.mark.path.join(" > ") + " (confirmation " + n.mark.confirmation + ", " + n.mark.hops + " hops, until " + when(n.mark.expires_at) + ")");
  } else {
    line(panel, "Marks", "none");
  }
  if (n.override) line(panel, "Override", n.override);
  if (n.alert) line(panel, "Open campaign alert", n.alert);
  if (n.shared) line(panel, "Shared infrastructure", "linked to too many accounts to mean anything; not crossed");
  line(panel, "Seen", when(n.first_seen) + " to " + when(n.last_seen));
  const actions = document.createElement("p");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "small expand-selected";
  button.textContent = "Expand";
  button.addEventListener("click", () => expand(id));
  actions.append(button);
  if (n.kind === "account") {
    const link = document.createElement("a");
    link.href = "/console/accounts/" + encodeURIComponent(n.value);
    link.className = "open-case";
    link.textContent = " Open the case";
    actions.append(link);
  }
  panel.append(actions);
}

function renderList() {
  const list = document.getElementById("graph-nodes");
  list.textContent = "";
  for (const [id, n] of [...nodes.entries()].sort()) {
    const li = document.createElement("li");
    li.dataset.node = id;
    const select = document.createElement("button");
    select.type = "button";
    select.className = "small show";
    select.textContent = id + (n.mark ? " (confirmed fraud)" : "");
    select.addEventListener("click", () => { cy.$(":selected").unselect(); cy.getElementById(id).select(); show(id); });
    const more = document.createElement("button");
    more.type = "button";
    more.className = "small expand";
    more.textContent = "Expand";
    more.setAttribute("aria-label", "Expand " + id);
    more.addEventListener("click", () => expand(id));
    li.append(select, " ", more);
    list.append(li);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("graph");
  // eslint-disable-next-line no-undef
  cy = cytoscape({
    container: box,
    style: [
      { selector: "node", style: { label: "data(label)", "font-size": 10, "background-color": (el) => KIND_COLOURS[el.data("kind")] || "#555", color: "#1d2430" } },
      { selector: "node[marked = 'yes']", style: { "border-width": 4, "border-color": "#b3261e" } },
      { selector: "node:selected", style: { "border-width": 4, "border-color": "#f0b458" } },
      { selector: "edge", style: { width: 1.5, "line-color": "#8a94a6", "curve-style": "bezier" } },
    ],
  });
  cy.on("tap", "node", (event) => show(event.target.id()));
  cy.on("dbltap", "node", (event) => expand(event.target.id()));
  const root = nodeId(box.dataset.kind, box.dataset.value);
  expand(root).then(() => show(root));
});
