// The Tenure portal: sign in with a staff key, customer 360, my open tasks, retention dashboard.
// It speaks only the public GraphQL API; sections of plugins that are off are left out (it asks
// the schema which fields exist).
"use strict";

const main = document.getElementById("main");
const { esc, fmt } = Charts;
let has = new Set();
// A newer navigation wins: a page whose answer arrives after the user moved on draws nothing.
let navigation = 0;

async function gql(query, variables = {}) {
  const key = sessionStorage.getItem("tenure.key");
  const answer = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await answer.json();
  if (body.errors && body.errors.length) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

const money = (m) => (m ? `${(m.amount / 100).toLocaleString("en-US", { minimumFractionDigits: 2 })} ${m.currency}` : "");
const day = (t) => (t ? String(t).slice(0, 10) : "—");
const monthsAgo = (n) => { const d = new Date(); d.setUTCMonth(d.getUTCMonth() - n, 1); return d.toISOString().slice(0, 10); };
const show = (html, mine = navigation) => { if (mine === navigation) main.innerHTML = html; return mine === navigation; };
const fail = (error) => show(`<p class="error" role="alert">${esc(error.message)}</p>`);

// -- Signing in -------------------------------------------------------------------------------

function signInPage(message = "") {
  navigation += 1;
  document.getElementById("nav").hidden = true;
  show(`<form class="signin card" id="signin">
      <h1>Sign in</h1>
      <label for="key">Staff API key</label>
      <input id="key" type="password" autocomplete="off" placeholder="tk_…" required>
      <button type="submit">Sign in</button>
      <p class="error" id="signin-error" role="alert">${esc(message)}</p>
    </form>`);
  document.getElementById("signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    sessionStorage.setItem("tenure.key", document.getElementById("key").value.trim());
    try {
      await start();
      if (location.hash === "#/customers") route(); else location.hash = "#/customers";
    } catch (error) {
      sessionStorage.removeItem("tenure.key");
      signInPage(error.message);
    }
  });
}

async function start() {
  const data = await gql(`{ viewer { role name staffUser { name } } c: __type(name: "Customer") { fields { name } }
                            q: __type(name: "Query") { fields { name } } }`);
  has = new Set([...(data.c?.fields || []).map((f) => `Customer.${f.name}`), ...(data.q?.fields || []).map((f) => f.name)]);
  document.getElementById("who").textContent = `${data.viewer.staffUser?.name || data.viewer.name} (${data.viewer.role})`;
  document.getElementById("nav").hidden = false;
}

// -- Customers and the customer 360 -----------------------------------------------------------

async function customersPage(search = "") {
  const mine = navigation;
  const data = await gql(`query Customers($search: String) { customers(first: 25, filter: {search: $search}) {
      totalCount edges { node { id name emails orderCount totalSpent { amount currency } lastOrderAt } } } }`,
  { search: search || null });
  const rows = data.customers.edges.map(({ node: c }) => `<tr>
      <td><a class="customer-link" href="#/customer/${c.id}">${esc(c.name)}</a></td><td>${esc(c.emails[0] || "")}</td>
      <td>${c.orderCount}</td><td>${money(c.totalSpent)}</td><td>${day(c.lastOrderAt)}</td></tr>`).join("");
  show(`<h1>Customers <span class="muted">(${data.customers.totalCount})</span></h1>
    <form id="search" class="card"><input id="q" value="${esc(search)}" placeholder="Name, email or phone">
      <button type="submit">Search</button></form>
    <div class="card"><table><thead><tr><th>Name</th><th>Email</th><th>Orders</th><th>Spent</th><th>Last order</th></tr></thead>
      <tbody>${rows}</tbody></table></div>`, mine);
  if (mine !== navigation) return;
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    customersPage(document.getElementById("q").value).catch(fail);
  });
}

function customerQuery() {
  const parts = [
    `id name emails phones tags createdAt orderCount lastOrderAt totalSpent { amount currency } owner { name }
     timeline(first: 25) { edges { node { at kind summary } } }`,
  ];
  if (has.has("Customer.churnRisk")) parts.push("churnRisk { score level reasons since }");
  if (has.has("Customer.points")) parts.push("points { balance pending lifetimeEarned }");
  if (has.has("Customer.tier")) parts.push("tier { tier { name } reason progress { nextTier { name } spendToGo ordersToGo pointsToGo } }");
  if (has.has("Customer.surveys")) parts.push("surveys(first: 5) { status sentAt survey { name } response { score category comment } }");
  if (has.has("Customer.subscriptions")) parts.push("subscriptions { status startsOn endsOn autoRenew plan { name } value { amount currency } }");
  return `query Customer360($id: ID!) { customer(id: $id) { ${parts.join(" ")} } }`;
}

async function customerPage(id) {
  const mine = navigation;
  const c = (await gql(customerQuery(), { id })).customer;
  if (!c) { show(`<p class="error">No customer with id ${esc(id)}.</p>`, mine); return; }
  const cards = [`<section class="card" id="profile"><h2>Profile</h2>
      <p>${c.emails.map(esc).join(", ") || "no email"} · ${c.phones.map(esc).join(", ") || "no phone"}</p>
      <p>${c.tags.map((t) => `<span class="pill">${esc(t)}</span>`).join("")}</p>
      <p class="muted">Customer since ${day(c.createdAt)} · owner ${esc(c.owner?.name || "none")}</p>
      <p><span class="figure">${c.orderCount}</span> orders · <span class="figure">${money(c.totalSpent)}</span></p></section>`];
  if (c.churnRisk !== undefined) {
    const r = c.churnRisk;
    cards.push(`<section class="card" id="churn"><h2>Churn risk</h2>${r ? `
      <p><span class="figure">${r.score}</span> / 100 health <span class="pill level-${r.level}">${r.level}</span></p>
      <ul id="churn-reasons">${r.reasons.map((x) => `<li>${esc(x)}</li>`).join("") || "<li>No warning signs</li>"}</ul>`
      : `<p class="muted">Not scored yet.</p>`}</section>`);
  }
  if (c.points) {
    cards.push(`<section class="card" id="points"><h2>Points</h2><p><span class="figure">${fmt(c.points.balance)}</span> available</p>
      <p class="muted">${fmt(c.points.pending)} pending · ${fmt(c.points.lifetimeEarned)} earned in all</p></section>`);
  }
  if (c.tier) {
    const p = c.tier.progress || {};
    const toGo = [p.spendToGo != null && `${money({ amount: p.spendToGo, currency: c.totalSpent.currency })} to spend`,
      p.ordersToGo != null && `${p.ordersToGo} orders`, p.pointsToGo != null && `${fmt(p.pointsToGo)} points`].filter(Boolean);
    cards.push(`<section class="card" id="tier"><h2>Tier</h2><p class="figure">${esc(c.tier.tier?.name || "No tier")}</p>
      <p class="muted">${esc(c.tier.reason || "")}</p>
      ${p.nextTier ? `<p>Next: ${esc(p.nextTier.name)} — ${toGo.join(" or ")} to go</p>` : ""}</section>`);
  }
  if (c.surveys) {
    cards.push(`<section class="card" id="surveys"><h2>Surveys</h2><table><tbody>${c.surveys.map((s) => `<tr>
      <td>${esc(s.survey.name)}</td><td>${s.response ? `${s.response.score} (${esc(s.response.category)})` : esc(s.status)}</td>
      <td>${day(s.sentAt)}</td></tr>`).join("") || `<tr><td class="muted">No survey sent yet</td></tr>`}</tbody></table></section>`);
  }
  if (c.subscriptions) {
    cards.push(`<section class="card" id="subscriptions"><h2>Subscriptions</h2><table><tbody>${c.subscriptions.map((s) => `<tr>
      <td>${esc(s.plan.name)}</td><td>${esc(s.status)}</td><td>until ${day(s.endsOn)}</td>
      <td>${s.autoRenew ? "auto-renews" : "ends"}</td><td>${money(s.value)}</td></tr>`).join("")
      || `<tr><td class="muted">No subscription</td></tr>`}</tbody></table></section>`);
  }
  const timeline = c.timeline.edges.map(({ node: t }) =>
    `<li><span class="muted">${day(t.at)}</span> <span class="pill">${esc(t.kind)}</span> ${esc(t.summary)}</li>`).join("");
  show(`<h1 id="customer-name">${esc(c.name)}</h1><div class="grid">${cards.join("")}</div>
    <section class="card" id="timeline" style="margin-top:16px"><h2>Timeline</h2><ul class="timeline">${timeline}</ul></section>`,
  mine);
}

// -- My open tasks ----------------------------------------------------------------------------

async function tasksPage() {
  const mine = navigation;
  const data = await gql(`query MyTasks { tasks(first: 50, filter: {mine: true, status: OPEN}) { totalCount
      edges { node { id title reason dueAt createdAt source customer { id name } } } } }`);
  const rows = data.tasks.edges.map(({ node: t }) => `<tr class="task">
      <td>${esc(t.title)}<div class="muted">${esc(t.reason)}</div></td>
      <td>${t.customer ? `<a href="#/customer/${t.customer.id}">${esc(t.customer.name)}</a>` : ""}</td>
      <td>${esc(t.source)}</td><td>${day(t.dueAt)}</td></tr>`).join("");
  show(`<h1>My open tasks <span class="muted" id="task-count">(${data.tasks.totalCount})</span></h1>
    <div class="card"><table><thead><tr><th>Task</th><th>Customer</th><th>From</th><th>Due</th></tr></thead>
    <tbody>${rows || `<tr><td class="muted" colspan="4">Nothing open. Well done.</td></tr>`}</tbody></table></div>`, mine);
}

// -- Retention dashboard ----------------------------------------------------------------------

const reasonGroup = (r) => r.replace(/\d+/g, "N").replace(/, usual gap N$/, "").replace(/complaints/, "complaint")
  .replace(/orders/, "order");

async function dashboardPage() {
  const mine = navigation;
  const from = monthsAgo(11);
  const blocks = [];
  const panel = (id, title, body) => `<section class="card" id="${id}"><h2>${title}</h2>${body}</section>`;
  const off = (plugin) => `<p class="muted">Needs the ${plugin} plugin.</p>`;
  if (has.has("cohorts")) {
    const rows = (await gql(`query Cohorts($from: Date!, $to: Date!) { cohorts(from: $from, to: $to) {
        month size cells { offset share } } }`, { from, to: monthsAgo(0) })).cohorts;
    blocks.push(panel("cohorts", "Cohort retention: share of each first-order month still ordering",
      Charts.heatmap(rows.filter((r) => r.size > 0).map((r) => ({ label: r.month.slice(0, 7), size: r.size,
        cells: r.cells.map((x) => x.share / 100) })), { label: "Cohort retention heatmap" })));  // share is a percentage
  } else blocks.push(panel("cohorts", "Cohort retention", `<p class="muted">This server offers no cohort report.</p>`));
  if (has.has("npsReport")) {
    const nps = (await gql(`query Nps($from: Date!) { npsReport(from: $from, groupBy: MONTH) { nps responses
        trend { start nps responses } } }`, { from })).npsReport;
    blocks.push(panel("nps", `NPS by month <span class="muted">(${nps.nps === null ? "no answers" : `${fmt(nps.nps)} over ${nps.responses} answers`})</span>`,
      Charts.line(nps.trend.map((p) => ({ label: p.start.slice(0, 7), value: p.nps })), { label: "NPS trend" })));
  } else blocks.push(panel("nps", "NPS by month", off("nps")));
  if (has.has("churnWarnings")) {
    const data = await gql(`query Warnings { churnWarnings(first: 100, filter: {status: OPEN}) { totalCount
        edges { node { level reasons } } } }`);
    const counts = new Map();
    for (const { node } of data.churnWarnings.edges) {
      for (const r of new Set(node.reasons.map(reasonGroup))) counts.set(r, (counts.get(r) || 0) + 1);
    }
    const items = [...counts].map(([label, value]) => ({ label, value })).sort((a, b) => b.value - a.value);
    blocks.push(panel("warnings", `Open churn warnings by reason <span class="muted">(${data.churnWarnings.totalCount} open;
      latest 100 counted)</span>`, Charts.bars(items, { label: "Churn warnings by reason", color: "#c4352b" })));
  } else blocks.push(panel("warnings", "Open churn warnings by reason", off("churn")));
  if (has.has("pointsLiability")) {
    const p = (await gql(`query Liability { pointsLiability { issued redeemed expired reversed outstanding pending
        outstandingValue { amount currency } } }`)).pointsLiability;
    blocks.push(panel("liability", `Points liability <span class="muted">(${fmt(p.outstanding)} points outstanding, worth
      ${money(p.outstandingValue)})</span>`, Charts.bars([
      { label: "Issued", value: p.issued }, { label: "Redeemed", value: p.redeemed }, { label: "Expired", value: p.expired },
      { label: "Reversed", value: p.reversed }, { label: "Pending", value: p.pending, color: "#d98b12" },
      { label: "Outstanding", value: p.outstanding, color: "#c4352b" }], { label: "Points liability" })));
  } else blocks.push(panel("liability", "Points liability", off("loyalty")));
  if (has.has("tierDistribution")) {
    const rows = (await gql(`query Tiers { tierDistribution { tier { name rank } customers } }`)).tierDistribution;
    const items = rows.slice().sort((a, b) => (a.tier?.rank ?? -1) - (b.tier?.rank ?? -1))
      .map((r) => ({ label: r.tier ? r.tier.name : "No tier", value: r.customers }));
    blocks.push(panel("tiers", "Customers per tier", Charts.bars(items, { label: "Tier distribution", color: "#2c8a4b" })));
  } else blocks.push(panel("tiers", "Customers per tier", off("tiers")));
  show(`<h1>Retention</h1><div class="grid">${blocks.join("")}</div>`, mine);
}

// -- Routing ----------------------------------------------------------------------------------

async function route() {
  if (!sessionStorage.getItem("tenure.key")) { signInPage(); return; }
  const [, page, id] = location.hash.split("/");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === `#/${page}`);
  const mine = ++navigation;
  show(`<p class="muted">Loading…</p>`);
  delete main.dataset.page;
  try {
    if (!has.size) await start();
    if (page === "customer" && id) await customerPage(decodeURIComponent(id));
    else if (page === "tasks") await tasksPage();
    else if (page === "dashboard") await dashboardPage();
    else await customersPage();
    if (mine === navigation) main.dataset.page = page || "customers";
  } catch (error) {
    if (mine === navigation) fail(error);
  }
}

document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem("tenure.key");
  has = new Set();
  location.hash = "";
  signInPage();
});
window.addEventListener("hashchange", route);
route();
