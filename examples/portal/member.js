// The member mini-app: what a mobile app shows a signed-in member, from `me` and a member token
// (in a real app your backend asks Tenure's issueMemberToken for it after the member logs in).
"use strict";

const main = document.getElementById("main");
const { esc, fmt } = Charts;

async function gql(query, variables = {}) {
  const token = sessionStorage.getItem("tenure.member");
  const answer = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await answer.json();
  if (body.errors && body.errors.length) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

function signIn(message = "") {
  main.innerHTML = `<form class="signin card" id="signin"><h1>Member sign-in</h1>
    <label for="token">Member token</label><input id="token" autocomplete="off" required>
    <button type="submit">Open</button><p class="error" role="alert">${esc(message)}</p></form>`;
  document.getElementById("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("tenure.member", document.getElementById("token").value.trim());
    render().catch((error) => { sessionStorage.removeItem("tenure.member"); signIn(error.message); });
  });
}

const ME = `{ me { name
  points { balance pending expiringSoon { points at } }
  tier { tier { name benefits { pointsMultiplier discountPercent perks } }
         progress { nextTier { name } spendToGo ordersToGo pointsToGo } }
  affordableRewards { id name description cost }
  openSurveys { question scale token } } }`;

async function render(notice = "") {
  const me = (await gql(ME)).me;
  const t = me.tier, p = t.progress || {}, b = t.tier?.benefits;
  const toGo = [p.pointsToGo != null && `${fmt(p.pointsToGo)} points`, p.ordersToGo != null && `${p.ordersToGo} orders`,
    p.spendToGo != null && `${(p.spendToGo / 100).toFixed(2)} to spend`].filter(Boolean).join(" or ");
  const survey = me.openSurveys[0];
  const top = survey && survey.scale === "CSAT" ? 5 : 10, bottom = survey && survey.scale === "CSAT" ? 1 : 0;
  main.innerHTML = `<h1 id="hello">Hi ${esc(me.name)}</h1>
    ${notice ? `<p class="card" id="notice" role="status">${esc(notice)}</p>` : ""}
    <section class="card" id="points"><h2>Points</h2><p><span class="figure" id="balance">${fmt(me.points.balance)}</span> to spend</p>
      <p class="muted">${fmt(me.points.pending)} on their way${me.points.expiringSoon.map((x) =>
        ` · ${fmt(x.points)} expire ${String(x.at).slice(0, 10)}`).join("")}</p></section>
    <section class="card" id="tier"><h2>Tier</h2><p class="figure">${esc(t.tier?.name || "Member")}</p>
      ${b ? `<p>${b.pointsMultiplier !== 100 ? `${b.pointsMultiplier / 100}× points · ` : ""}${b.discountPercent ? `${b.discountPercent}% off · ` : ""}
        ${b.perks.map(esc).join(" · ")}</p>` : ""}
      ${p.nextTier ? `<p>${esc(p.nextTier.name)} is ${toGo} away</p>` : ""}</section>
    <section class="card" id="rewards"><h2>Rewards you can have now</h2>${me.affordableRewards.map((r) => `
      <div class="reward"><div><strong>${esc(r.name)}</strong><div class="muted">${esc(r.description)}</div></div>
      <button type="button" data-reward="${r.id}">${fmt(r.cost)} points</button></div>`).join("")
      || `<p class="muted">Collect more points to unlock a reward.</p>`}</section>
    ${survey ? `<section class="card" id="survey"><h2>One question</h2><p>${esc(survey.question)}</p>
      <div class="scores">${Array.from({ length: top - bottom + 1 }, (_, n) =>
        `<button type="button" data-score="${n + bottom}">${n + bottom}</button>`).join("")}</div></section>` : ""}`;
  for (const button of main.querySelectorAll("[data-reward]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const data = await gql(`mutation($id: ID!, $key: String!) { redeemReward(input: {rewardId: $id, idempotencyKey: $key}) {
        balance userErrors { message } } }`, { id: button.dataset.reward, key: `portal-${button.dataset.reward}-${Date.now()}` });
      const errors = data.redeemReward.userErrors;
      await render(errors.length ? errors[0].message : "Enjoy your reward!");
    });
  }
  for (const button of main.querySelectorAll("[data-score]")) {
    button.addEventListener("click", async () => {
      const data = await gql(`mutation($token: String!, $score: Int!) { submitSurveyResponse(input: {token: $token, score: $score}) {
        userErrors { message } } }`, { token: survey.token, score: Number(button.dataset.score) });
      const errors = data.submitSurveyResponse.userErrors;
      await render(errors.length ? errors[0].message : "Thank you for your answer!");
    });
  }
  main.dataset.page = "member";
}

if (sessionStorage.getItem("tenure.member")) render().catch((error) => signIn(error.message)); else signIn();
