// The member mini-app (#/member): what a mobile app shows a member signed in with a member
// token (a real app's backend asks Tenure's issueMemberToken for it after the member logs in).
import { useCallback, useMemo, useState } from "react";
import { Provider, useMutation, useQuery } from "urql";
import { SignIn } from "../components/SignIn";
import { Card, Loaded, Page } from "../components/ui";
import { formatMoney, formatDay, formatNumber } from "../format";
import { AnswerSurveyDocument, MemberHomeDocument, RedeemRewardDocument } from "../generated/graphql";
import { clientFor, saveCredential, savedCredential } from "../session";

export function MemberApp() {
  const [token, setToken] = useState(() => savedCredential("member"));
  const [problem, setProblem] = useState("");
  const client = useMemo(() => (token ? clientFor(token) : null), [token]);

  const signIn = useCallback(async (value: string) => {
    const answer = await clientFor(value).query(MemberHomeDocument, {}, { requestPolicy: "network-only" }).toPromise();
    if (answer.error) {
      setProblem(answer.error.graphQLErrors[0]?.message ?? answer.error.message);
      return;
    }
    saveCredential("member", value);
    setProblem("");
    setToken(value);
  }, []);

  if (!client) return <SignIn title="Member sign-in" label="Member token" placeholder="token" onSubmit={signIn} error={problem} />;
  const signOut = () => {
    saveCredential("member", null);
    setToken(null);
  };
  return (
    <Provider value={client}>
      <div className="member-shell">
        <header className="topbar member-bar">
          <span className="brand"><span className="logo" aria-hidden="true">T</span> Rewards</span>
          <div className="account">
            <button type="button" className="ghost" id="signout" onClick={signOut}>Sign out</button>
          </div>
        </header>
        <main id="main"><MemberHome /></main>
      </div>
    </Provider>
  );
}

function MemberHome() {
  const [result, refetch] = useQuery({ query: MemberHomeDocument, requestPolicy: "network-only" });
  const [, redeem] = useMutation(RedeemRewardDocument);
  const [, answer] = useMutation(AnswerSurveyDocument);
  const [notice, setNotice] = useState("");
  const [busy, setBusy] = useState<string | null>(null);

  const redeemReward = async (rewardId: string) => {
    setBusy(rewardId);
    const done = await redeem({ rewardId, key: `portal-${rewardId}-${Date.now()}` });
    const errors = done.data?.redeemReward.userErrors ?? [];
    setNotice(done.error?.message ?? errors[0]?.message ?? "Enjoy your reward!");
    setBusy(null);
    refetch({ requestPolicy: "network-only" });
  };
  const answerSurvey = async (token: string, score: number) => {
    const done = await answer({ token, score });
    const errors = done.data?.submitSurveyResponse.userErrors ?? [];
    setNotice(done.error?.message ?? errors[0]?.message ?? "Thank you for your answer!");
    refetch({ requestPolicy: "network-only" });
  };

  return (
    <Page name="member">
      <Loaded {...result}>
        {({ me, serverInfo: { currency } }) => {
          const t = me.tier;
          const p = t.progress;
          const b = t.tier?.benefits;
          const toGo = [
            p.pointsToGo != null ? `${formatNumber(p.pointsToGo)} points` : null,
            p.ordersToGo != null ? `${p.ordersToGo} orders` : null,
            p.spendToGo != null ? `${formatMoney({ amount: p.spendToGo, currency })} to spend` : null,
          ].filter(Boolean).join(" or ");
          const survey = me.openSurveys[0];
          const [bottom, top] = survey?.scale === "CSAT" ? [1, 5] : [0, 10];
          return (
            <div className="member">
              <h1 id="hello">Hi {me.name}</h1>
              {notice ? <p className="card notice" id="notice" role="status">{notice}</p> : null}
              <Card id="points" title="Points">
                <p><span className="figure" id="balance">{formatNumber(me.points.balance)}</span> to spend</p>
                <p className="muted">
                  {formatNumber(me.points.pending)} on their way
                  {me.points.expiringSoon.map((x) => ` · ${formatNumber(x.points)} expire ${formatDay(x.at)}`).join("")}
                </p>
              </Card>
              <Card id="tier" title="Tier">
                <p className="figure">{t.tier?.name ?? "Member"}</p>
                {b ? (
                  <p>
                    {[b.pointsMultiplier !== 100 ? `${b.pointsMultiplier / 100}× points` : null,
                      b.discountPercent ? `${b.discountPercent}% off` : null, ...b.perks].filter(Boolean).join(" · ")}
                  </p>
                ) : null}
                {p.nextTier && toGo ? <p>{p.nextTier.name} is {toGo} away</p> : null}
              </Card>
              <Card id="rewards" title="Rewards you can have now">
                {me.affordableRewards.map((r) => (
                  <div className="reward" key={r.id}>
                    <div><strong>{r.name}</strong><div className="muted">{r.description}</div></div>
                    <button type="button" disabled={busy === r.id} onClick={() => redeemReward(r.id)}>
                      {formatNumber(r.cost)} points
                    </button>
                  </div>
                ))}
                {me.affordableRewards.length ? null : <p className="muted">Collect more points to unlock a reward.</p>}
              </Card>
              {survey ? (
                <Card id="survey" title="One question">
                  <p>{survey.question}</p>
                  <div className="scores">
                    {Array.from({ length: top - bottom + 1 }, (_, n) => (
                      <button type="button" key={n} onClick={() => answerSurvey(survey.token, n + bottom)}>{n + bottom}</button>
                    ))}
                  </div>
                </Card>
              ) : null}
            </div>
          );
        }}
      </Loaded>
    </Page>
  );
}
