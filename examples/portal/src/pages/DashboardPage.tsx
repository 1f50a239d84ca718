// The retention dashboard. Every figure is counted by the server over whole months: the month
// still running is left out (a partial month would end each line in a spike or a dip).
import { useState } from "react";
import type { ReactNode } from "react";
import { useQuery } from "urql";
import {
  Bar, BarChart, CartesianGrid, Cell, LabelList, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis,
} from "recharts";
import { Card, Loaded, Page } from "../components/ui";
import { endOfLastMonth, formatMoney, formatMonth, formatNumber, monthStart } from "../format";
import {
  ChurnOutcomesDocument,
  CohortsDocument,
  NpsByMonthDocument,
  OpenWarningsByLevelDocument,
  PointsLiabilityDocument,
  RetentionByMonthDocument,
  TierDistributionDocument,
} from "../generated/graphql";
import { usePlugins } from "../plugins";

const BLUE = "#2f5bea";
const RED = "#d14343";
const AMBER = "#e0911b";
const GREEN = "#2e9e5b";
const AXIS = { fontSize: 12, fill: "#5b6472" };
const percent = (n: number | null | undefined) => (n == null ? "" : `${n.toFixed(1)}%`);

export function DashboardPage() {
  const plugins = usePlugins();
  // Twelve whole months, ending with the last one.
  const from = monthStart(-12);
  const to = endOfLastMonth();
  const needs = (plugin: string, id: string, title: string, chart: ReactNode) =>
    plugins.has(plugin) ? chart : (
      <Card id={id} title={title}><p className="muted">Needs the {plugin} plugin.</p></Card>
    );
  return (
    <Page name="dashboard">
      <div className="page-head">
        <h1>Retention</h1>
        <span className="muted">{formatMonth(from)} – {formatMonth(to)} · whole months; {formatMonth(monthStart(0))} so far is left out</span>
      </div>
      <div className="grid">
        <CrrChart from={from} to={to} />
        {needs("churn", "warnings", "Open churn warnings", <ChurnChart from={from} />)}
        {needs("nps", "nps", "NPS by month", <NpsChart from={from} to={to} />)}
        <CohortTable from={monthStart(-11)} to={to} />
        {needs("loyalty", "liability", "Points liability", <LiabilityChart />)}
        {needs("tiers", "tiers", "Customers per tier", <TierChart />)}
      </div>
    </Page>
  );
}

function CrrChart({ from, to }: { from: string; to: string }) {
  const [result] = useQuery({ query: RetentionByMonthDocument, variables: { from, to } });
  const months = result.data?.retention ?? [];
  const last = months[months.length - 1];
  return (
    <Card id="crr" title="Customer retention rate (CRR)" wide
      aside={last ? <>Last month <strong id="crr-last">{percent(last.retentionRate)}</strong> of {formatNumber(last.customersAtStart)} active customers kept</> : null}>
      <Loaded {...result}>
        {(data) => (
          <>
          <ResponsiveContainer width="100%" height={250}>
            <BarChart data={data.retention.map((m) => ({ month: formatMonth(m.start), crr: m.retentionRate }))}
              margin={{ top: 24, right: 8, left: 0, bottom: 0 }}>
              <CartesianGrid vertical={false} stroke="#eceef2" />
              <XAxis dataKey="month" tick={AXIS} tickLine={false} axisLine={false} />
              <YAxis domain={[0, 100]} tick={AXIS} tickLine={false} axisLine={false} unit="%" width={44} />
              <Tooltip formatter={(v) => percent(Number(v))} />
              <Bar dataKey="crr" name="CRR" fill={BLUE} radius={[4, 4, 0, 0]} isAnimationActive={false}>
                <LabelList dataKey="crr" position="top" formatter={(v) => percent(v as number | null)} style={{ fontSize: 11, fill: "#333" }} />
              </Bar>
            </BarChart>
          </ResponsiveContainer>
          {last ? (
            <div className="mini-stats">
              <div>Last month: <strong>{formatNumber(last.customersAtStart)}</strong> active at its start</div>
              <div><strong>{formatNumber(last.customersAtEnd)}</strong> at its end</div>
              <div><strong>{formatNumber(last.newCustomers)}</strong> new</div>
              <div><strong>{formatNumber(last.orders)}</strong> orders</div>
            </div>
          ) : null}
          </>
        )}
      </Loaded>
    </Card>
  );
}

function ChurnChart({ from }: { from: string }) {
  const [counts] = useQuery({ query: OpenWarningsByLevelDocument });
  // Fixed when the page opens: a new "now" on every render would be a new query each time.
  const [now] = useState(() => new Date().toISOString());
  const [outcomes] = useQuery({ query: ChurnOutcomesDocument, variables: { from: `${from}T00:00:00Z`, to: now } });
  const total = counts.data?.all.totalCount;
  return (
    <Card id="warnings" title="Open churn warnings"
      aside={total !== undefined ? <><strong id="warnings-total">{formatNumber(total)}</strong> open</> : null}>
      <Loaded {...counts}>
        {(data) => {
          const levels = [
            { id: "HIGH", level: "High risk", count: data.high.totalCount, color: RED },
            { id: "MEDIUM", level: "Medium risk", count: data.medium.totalCount, color: AMBER },
            { id: "LOW", level: "Low risk", count: data.low.totalCount, color: GREEN },
          ];
          return (
            <>
              <ResponsiveContainer width="100%" height={150}>
                <BarChart layout="vertical" margin={{ top: 0, right: 48, left: 8, bottom: 0 }} data={levels}>
                  <XAxis type="number" hide allowDecimals={false} />
                  <YAxis type="category" dataKey="level" tick={AXIS} tickLine={false} axisLine={false} width={90} />
                  <Tooltip />
                  <Bar dataKey="count" name="Open warnings" radius={[0, 4, 4, 0]} isAnimationActive={false}>
                    {levels.map((l) => <Cell key={l.id} fill={l.color} />)}
                    <LabelList dataKey="count" position="right" style={{ fontSize: 12, fill: "#333" }} />
                  </Bar>
                </BarChart>
              </ResponsiveContainer>
              <ul className="legend" id="warning-levels">
                {levels.map((l) => (
                  <li key={l.id} data-level={l.id}>
                    <span className="swatch" style={{ background: l.color }} />
                    {l.level} <strong className="level-count">{formatNumber(l.count)}</strong>
                  </li>
                ))}
              </ul>
            </>
          );
        }}
      </Loaded>
      <Loaded {...outcomes}>
        {({ churnReport: r }) => (
          <div className="mini-stats" id="churn-outcomes">
            <div><strong>{formatNumber(r.warned)}</strong> warned in 12 months</div>
            <div><strong>{formatNumber(r.cameBack)}</strong> came back{r.cameBackRate != null ? ` (${percent(r.cameBackRate)})` : ""}</div>
            <div><strong>{formatNumber(r.recovered)}</strong> recovered</div>
          </div>
        )}
      </Loaded>
    </Card>
  );
}

function NpsChart({ from, to }: { from: string; to: string }) {
  const [result] = useQuery({ query: NpsByMonthDocument, variables: { from, to } });
  const report = result.data?.npsReport;
  return (
    <Card id="nps" title="NPS by month"
      aside={report ? (report.nps == null ? "no answers" : <><strong>{report.nps.toFixed(0)}</strong> over {formatNumber(report.responses)} answers</>) : null}>
      <Loaded {...result}>
        {(data) => (
          <ResponsiveContainer width="100%" height={210}>
            <LineChart data={data.npsReport.trend.map((p) => ({ month: formatMonth(p.start), nps: p.nps, responses: p.responses }))}
              margin={{ top: 16, right: 16, left: 0, bottom: 0 }}>
              <CartesianGrid vertical={false} stroke="#eceef2" />
              <XAxis dataKey="month" tick={AXIS} tickLine={false} axisLine={false} />
              <YAxis domain={[-100, 100]} ticks={[-100, -50, 0, 50, 100]} tick={AXIS} tickLine={false} axisLine={false} width={40} />
              <Tooltip formatter={(v) => (v == null ? "no answers" : Number(v).toFixed(0))} />
              <Line type="monotone" dataKey="nps" name="NPS" stroke={BLUE} strokeWidth={2.5} dot={{ r: 3 }}
                connectNulls isAnimationActive={false} />
            </LineChart>
          </ResponsiveContainer>
        )}
      </Loaded>
    </Card>
  );
}

function CohortTable({ from, to }: { from: string; to: string }) {
  const [result] = useQuery({ query: CohortsDocument, variables: { from, to } });
  return (
    <Card id="cohorts" title="Cohorts: share of each first-order month still ordering" wide>
      <Loaded {...result}>
        {(data) => {
          const rows = data.cohorts.filter((r) => r.size > 0);
          const width = Math.max(0, ...rows.map((r) => r.cells.length));
          return (
            <div className="scroll">
              <table className="heatmap">
                <thead>
                  <tr>
                    <th>Cohort</th><th className="num">Customers</th>
                    {Array.from({ length: width }, (_, n) => <th key={n} className="num">M{n}</th>)}
                  </tr>
                </thead>
                <tbody>
                  {rows.map((r) => (
                    <tr key={r.month}>
                      <th>{formatMonth(r.month)}</th>
                      <td className="num">{formatNumber(r.size)}</td>
                      {r.cells.map((cell) => (
                        <td key={cell.offset} className="cell num"
                          style={{ background: `rgba(47, 91, 234, ${0.08 + (cell.share / 100) * 0.85})`, color: cell.share > 55 ? "#fff" : "#1d2433" }}>
                          {cell.share.toFixed(0)}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          );
        }}
      </Loaded>
    </Card>
  );
}

function LiabilityChart() {
  const [result] = useQuery({ query: PointsLiabilityDocument });
  const p = result.data?.pointsLiability;
  return (
    <Card id="liability" title="Points liability"
      aside={p ? <><strong>{formatNumber(p.outstanding)}</strong> points outstanding, worth {formatMoney(p.outstandingValue)}</> : null}>
      <Loaded {...result}>
        {({ pointsLiability: l }) => (
          <ResponsiveContainer width="100%" height={210}>
            <BarChart margin={{ top: 20, right: 8, left: 0, bottom: 0 }} data={[
              { name: "Issued", points: l.issued }, { name: "Redeemed", points: l.redeemed },
              { name: "Expired", points: l.expired }, { name: "Reversed", points: l.reversed },
              { name: "Pending", points: l.pending }, { name: "Outstanding", points: l.outstanding },
            ]}>
              <CartesianGrid vertical={false} stroke="#eceef2" />
              <XAxis dataKey="name" tick={AXIS} tickLine={false} axisLine={false} interval={0} />
              <YAxis tick={AXIS} tickLine={false} axisLine={false} width={56} tickFormatter={(v) => formatNumber(Number(v))} />
              <Tooltip formatter={(v) => formatNumber(Number(v))} />
              <Bar dataKey="points" name="Points" radius={[4, 4, 0, 0]} isAnimationActive={false}>
                {[BLUE, GREEN, "#8a94a6", "#8a94a6", AMBER, RED].map((color, n) => <Cell key={n} fill={color} />)}
              </Bar>
            </BarChart>
          </ResponsiveContainer>
        )}
      </Loaded>
    </Card>
  );
}

function TierChart() {
  const [result] = useQuery({ query: TierDistributionDocument });
  return (
    <Card id="tiers" title="Customers per tier">
      <Loaded {...result}>
        {(data) => (
          <ResponsiveContainer width="100%" height={210}>
            <BarChart margin={{ top: 20, right: 8, left: 0, bottom: 0 }} data={data.tierDistribution
              .slice().sort((a, b) => (a.tier?.rank ?? -1) - (b.tier?.rank ?? -1))
              .map((r) => ({ tier: r.tier?.name ?? "No tier", customers: r.customers }))}>
              <CartesianGrid vertical={false} stroke="#eceef2" />
              <XAxis dataKey="tier" tick={AXIS} tickLine={false} axisLine={false} />
              <YAxis tick={AXIS} tickLine={false} axisLine={false} width={40} allowDecimals={false} />
              <Tooltip />
              <Bar dataKey="customers" name="Customers" fill={GREEN} radius={[4, 4, 0, 0]} isAnimationActive={false}>
                <LabelList dataKey="customers" position="top" style={{ fontSize: 11, fill: "#333" }} />
              </Bar>
            </BarChart>
          </ResponsiveContainer>
        )}
      </Loaded>
    </Card>
  );
}
