import { useQuery } from "urql";
import { Loaded, Page, Pill } from "../components/ui";
import { formatDay } from "../format";
import { MyOpenTasksDocument } from "../generated/graphql";

export function TasksPage() {
  const [result] = useQuery({ query: MyOpenTasksDocument });
  return (
    <Page name="tasks">
      <div className="page-head">
        <h1>
          My open tasks{" "}
          {result.data ? <span className="count" id="task-count">{result.data.tasks.totalCount}</span> : null}
        </h1>
      </div>
      <div className="card flush">
        <Loaded {...result}>
          {(data) => (
            <table className="table">
              <thead>
                <tr><th>Task</th><th>Customer</th><th>From</th><th>Due</th></tr>
              </thead>
              <tbody>
                {data.tasks.nodes.map((t) => (
                  <tr key={t.id} className="task">
                    <td>
                      {t.title}
                      {t.reason ? <div className="muted small">{t.reason}</div> : null}
                    </td>
                    <td>{t.customer ? <a href={`#/customer/${encodeURIComponent(t.customer.id)}`}>{t.customer.name}</a> : null}</td>
                    <td><Pill>{t.source}</Pill></td>
                    <td>{formatDay(t.dueAt)}</td>
                  </tr>
                ))}
                {data.tasks.nodes.length === 0 ? (
                  <tr><td colSpan={4} className="muted">Nothing open. Well done.</td></tr>
                ) : null}
              </tbody>
            </table>
          )}
        </Loaded>
      </div>
    </Page>
  );
}
