import { useState } from "react";
import { useQuery } from "urql";
import { Card, Loaded, Page, Pill } from "../components/ui";
import { formatDay, formatMoney, formatNumber } from "../format";
import {
  CustomerChurnDocument,
  CustomerOrdersDocument,
  CustomerPointsDocument,
  CustomerProfileDocument,
  CustomerSubscriptionsDocument,
  CustomerSurveysDocument,
  CustomerTierDocument,
} from "../generated/graphql";
import type { OrderStatus } from "../generated/graphql";
import { usePlugins } from "../plugins";

const STATUS: Record<OrderStatus, { label: string; tone: string }> = {
  PLACED: { label: "Placed", tone: "neutral" },
  PAID: { label: "Paid", tone: "good" },
  CANCELLED: { label: "Cancelled", tone: "bad" },
  REFUNDED: { label: "Refunded", tone: "bad" },
  PARTIALLY_REFUNDED: { label: "Partly refunded", tone: "warn" },
};

export function CustomerPage({ id, currency }: { id: string; currency: string }) {
  const plugins = usePlugins();
  const [profile] = useQuery({ query: CustomerProfileDocument, variables: { id } });
  const customer = profile.data?.customer;
  if (profile.data && !customer) {
    return <Page name="customer"><p className="error" role="alert">No customer with id {id}.</p></Page>;
  }
  return (
    <Page name="customer">
      <Loaded {...profile} data={customer ?? undefined}>
        {(c) => (
          <>
            <div className="page-head">
              <div>
                <a className="back" href="#/customers">← Customers</a>
                <h1 id="customer-name">{c.name}</h1>
                <div className="muted">
                  {c.emails.join(", ") || "no email"} · {c.phones.join(", ") || "no phone"}
                </div>
              </div>
              <div className="tags">{c.tags.map((t) => <Pill key={t}>{t}</Pill>)}</div>
            </div>
            <div className="stats" id="profile">
              <Stat label="Orders" value={formatNumber(c.orderCount)} />
              <Stat label="Total spent" value={formatMoney(c.totalSpent)} id="total-spent" />
              <Stat label="Last order" value={formatDay(c.lastOrderAt)} />
              <Stat label="Customer since" value={formatDay(c.createdAt)} />
              <Stat label="Owner" value={c.owner?.name ?? "none"} />
            </div>
            <div className="grid">
              <OrdersCard id={id} />
              {plugins.has("churn") ? <ChurnCard id={id} /> : null}
              {plugins.has("loyalty") ? <PointsCard id={id} /> : null}
              {plugins.has("tiers") ? <TierCard id={id} currency={currency} /> : null}
              {plugins.has("nps") ? <SurveysCard id={id} /> : null}
              {plugins.has("renewals") ? <SubscriptionsCard id={id} /> : null}
              <Card id="timeline" title="Timeline" wide>
                <ul className="timeline">
                  {c.timeline.nodes.map((t, n) => (
                    <li key={n}>
                      <span className="when">{formatDay(t.at)}</span>
                      <Pill>{t.kind}</Pill> {t.summary}
                    </li>
                  ))}
                </ul>
              </Card>
            </div>
          </>
        )}
      </Loaded>
    </Page>
  );
}

function Stat({ label, value, id }: { label: string; value: string; id?: string }) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value" id={id}>{value}</div>
    </div>
  );
}

/** Newest first, ten at a time; "Show more" asks for the page after the last one shown. */
function OrdersCard({ id }: { id: string }) {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [first] = useQuery({ query: CustomerOrdersDocument, variables: { id, after: null } });
  const total = first.data?.customer?.orders.totalCount;
  return (
    <Card id="orders" title="Orders" wide
      aside={total !== undefined ? <span id="orders-count">{formatNumber(total)} in all</span> : null}>
      <table className="table">
        <thead>
          <tr><th>Order</th><th>Placed</th><th>Channel</th><th>Items</th><th>Status</th><th className="num">Amount</th></tr>
        </thead>
        {cursors.map((after, n) => (
          <OrderRows key={after ?? "first"} id={id} after={after}
            onMore={n === cursors.length - 1 ? (cursor) => setCursors([...cursors, cursor]) : undefined} />
        ))}
      </table>
    </Card>
  );
}

function OrderRows({ id, after, onMore }: { id: string; after: string | null; onMore?: (cursor: string) => void }) {
  const [result] = useQuery({ query: CustomerOrdersDocument, variables: { id, after } });
  const orders = result.data?.customer?.orders;
  if (result.error) return <tbody><tr><td colSpan={6} className="error">{result.error.message}</td></tr></tbody>;
  if (!orders) return <tbody><tr><td colSpan={6} className="muted">Loading…</td></tr></tbody>;
  return (
    <tbody>
      {orders.nodes.map((o) => (
        <tr key={o.id} className="order">
          <td className="mono">{o.externalId}</td>
          <td>{formatDay(o.placedAt)}</td>
          <td>{o.channel}</td>
          <td className="muted small">{o.lines.map((l) => `${l.quantity} × ${l.name}`).join(", ") || "—"}</td>
          <td><Pill tone={STATUS[o.status].tone}>{STATUS[o.status].label}</Pill></td>
          <td className="num amount">
            {formatMoney(o.amount)}
            {o.refunded.amount > 0 ? <div className="muted small">−{formatMoney(o.refunded)} refunded</div> : null}
          </td>
        </tr>
      ))}
      {orders.nodes.length === 0 && !after ? <tr><td colSpan={6} className="muted">No orders yet.</td></tr> : null}
      {onMore && orders.pageInfo.hasNextPage && orders.pageInfo.endCursor ? (
        <tr>
          <td colSpan={6} className="more">
            <button type="button" className="ghost" id="more-orders" onClick={() => onMore(orders.pageInfo.endCursor!)}>
              Show more orders
            </button>
          </td>
        </tr>
      ) : null}
    </tbody>
  );
}

const LEVEL_TONE = { HIGH: "bad", MEDIUM: "warn", LOW: "good" } as const;

function ChurnCard({ id }: { id: string }) {
  const [result] = useQuery({ query: CustomerChurnDocument, variables: { id } });
  return (
    <Card id="churn" title="Churn risk">
      <Loaded {...result}>
        {(data) => {
          const risk = data.customer?.churnRisk;
          if (!risk) return <p className="muted">Not scored yet.</p>;
          return (
            <>
              <p>
                <span className="figure">{risk.score}</span> <span className="muted">/ 100 health</span>{" "}
                <Pill tone={LEVEL_TONE[risk.level]}>{risk.level.toLowerCase()}</Pill>
              </p>
              <ul id="churn-reasons" className="reasons">
                {risk.reasons.length ? risk.reasons.map((r) => <li key={r}>{r}</li>) : <li>No warning signs</li>}
              </ul>
              {risk.since ? <p className="muted small">Warned since {formatDay(risk.since)}</p> : null}
            </>
          );
        }}
      </Loaded>
    </Card>
  );
}

function PointsCard({ id }: { id: string }) {
  const [result] = useQuery({ query: CustomerPointsDocument, variables: { id } });
  return (
    <Card id="points" title="Points">
      <Loaded {...result}>
        {(data) => {
          const p = data.customer?.points;
          if (!p) return null;
          return (
            <>
              <p><span className="figure">{formatNumber(p.balance)}</span> <span className="muted">available</span></p>
              <p className="muted">{formatNumber(p.pending)} pending · {formatNumber(p.lifetimeEarned)} earned in all</p>
            </>
          );
        }}
      </Loaded>
    </Card>
  );
}

function TierCard({ id, currency }: { id: string; currency: string }) {
  const [result] = useQuery({ query: CustomerTierDocument, variables: { id } });
  return (
    <Card id="tier" title="Tier">
      <Loaded {...result}>
        {(data) => {
          const t = data.customer?.tier;
          if (!t) return null;
          const p = t.progress;
          const toGo = [
            p.spendToGo != null ? `${formatMoney({ amount: p.spendToGo, currency })} to spend` : null,
            p.ordersToGo != null ? `${p.ordersToGo} orders` : null,
            p.pointsToGo != null ? `${formatNumber(p.pointsToGo)} points` : null,
          ].filter(Boolean);
          return (
            <>
              <p className="figure">{t.tier?.name ?? "No tier"}</p>
              <p className="muted">{t.reason}</p>
              {p.nextTier ? <p>Next: <strong>{p.nextTier.name}</strong>, {toGo.join(" or ")} to go</p> : null}
            </>
          );
        }}
      </Loaded>
    </Card>
  );
}

function SurveysCard({ id }: { id: string }) {
  const [result] = useQuery({ query: CustomerSurveysDocument, variables: { id } });
  return (
    <Card id="surveys" title="Surveys">
      <Loaded {...result}>
        {(data) => (
          <table className="table compact">
            <tbody>
              {(data.customer?.surveys ?? []).map((s, n) => (
                <tr key={n}>
                  <td>{s.survey.name}</td>
                  <td>{s.response ? <><strong>{s.response.score}</strong> <span className="muted">{s.response.category}</span></> : <span className="muted">{s.status.toLowerCase()}</span>}</td>
                  <td className="muted">{formatDay(s.sentAt)}</td>
                </tr>
              ))}
              {data.customer?.surveys.length ? null : <tr><td className="muted">No survey sent yet</td></tr>}
            </tbody>
          </table>
        )}
      </Loaded>
    </Card>
  );
}

function SubscriptionsCard({ id }: { id: string }) {
  const [result] = useQuery({ query: CustomerSubscriptionsDocument, variables: { id } });
  return (
    <Card id="subscriptions" title="Subscriptions">
      <Loaded {...result}>
        {(data) => (
          <table className="table compact">
            <tbody>
              {(data.customer?.subscriptions ?? []).map((s) => (
                <tr key={s.id}>
                  <td>{s.plan.name}</td>
                  <td><Pill>{s.status.toLowerCase()}</Pill></td>
                  <td className="muted">until {formatDay(s.endsOn)}{s.autoRenew ? ", renews" : ""}</td>
                  <td className="num">{formatMoney(s.value)}</td>
                </tr>
              ))}
              {data.customer?.subscriptions.length ? null : <tr><td className="muted">No subscription</td></tr>}
            </tbody>
          </table>
        )}
      </Loaded>
    </Card>
  );
}
