import { useState } from "react";
import type { FormEvent } from "react";
import { useQuery } from "urql";
import { Loaded, Page } from "../components/ui";
import { formatDay, formatMoney, formatNumber } from "../format";
import { CustomerListDocument } from "../generated/graphql";

export function CustomersPage() {
  const [typed, setTyped] = useState("");
  const [search, setSearch] = useState<string | null>(null);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1];
  const [result] = useQuery({ query: CustomerListDocument, variables: { search, after } });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setSearch(typed.trim() || null);
    setCursors([null]);
  };
  const total = result.data?.customers.totalCount;
  return (
    <Page name="customers">
      <div className="page-head">
        <h1>
          Customers {total !== undefined ? <span className="count">{formatNumber(total)}</span> : null}
        </h1>
        <form className="search" id="search" onSubmit={submit} role="search">
          <input id="q" value={typed} onChange={(e) => setTyped(e.target.value)} placeholder="Name, email or phone" />
          <button type="submit">Search</button>
        </form>
      </div>
      <div className="card flush">
        <Loaded {...result}>
          {(data) => (
            <>
              <table className="table">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Email</th>
                    <th className="num">Orders</th>
                    <th className="num">Spent</th>
                    <th>Last order</th>
                  </tr>
                </thead>
                <tbody>
                  {data.customers.nodes.map((c) => (
                    <tr key={c.id}>
                      <td>
                        <a className="customer-link" href={`#/customer/${encodeURIComponent(c.id)}`}>{c.name}</a>
                      </td>
                      <td className="muted">{c.emails[0] ?? ""}</td>
                      <td className="num">{c.orderCount}</td>
                      <td className="num">{formatMoney(c.totalSpent)}</td>
                      <td>{formatDay(c.lastOrderAt)}</td>
                    </tr>
                  ))}
                  {data.customers.nodes.length === 0 ? (
                    <tr><td colSpan={5} className="muted">No customer matches.</td></tr>
                  ) : null}
                </tbody>
              </table>
              <div className="pager">
                <button type="button" className="ghost" disabled={cursors.length === 1}
                  onClick={() => setCursors(cursors.slice(0, -1))}>Previous</button>
                <button type="button" className="ghost" disabled={!data.customers.pageInfo.hasNextPage}
                  onClick={() => setCursors([...cursors, data.customers.pageInfo.endCursor])}>Next</button>
              </div>
            </>
          )}
        </Loaded>
      </div>
    </Page>
  );
}
