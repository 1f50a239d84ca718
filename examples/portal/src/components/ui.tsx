import type { ReactNode } from "react";
import type { CombinedError } from "urql";

export function Card({ id, title, aside, children, wide }: {
  id: string; title: ReactNode; aside?: ReactNode; children: ReactNode; wide?: boolean;
}) {
  return (
    <section className={wide ? "card wide" : "card"} id={id}>
      <div className="card-head">
        <h2>{title}</h2>
        {aside ? <div className="aside">{aside}</div> : null}
      </div>
      {children}
    </section>
  );
}

/** Loading, failed or ready: what every section of a page is in. */
export function Loaded<T>({ fetching, error, data, children }: {
  fetching: boolean; error?: CombinedError; data?: T; children: (data: T) => ReactNode;
}) {
  if (error) return <p className="error" role="alert">{error.graphQLErrors[0]?.message ?? error.message}</p>;
  if (data === undefined || (fetching && !data)) return <p className="muted loading">Loading…</p>;
  return <>{children(data)}</>;
}

export function Pill({ children, tone }: { children: ReactNode; tone?: string }) {
  return <span className={tone ? `pill ${tone}` : "pill"}>{children}</span>;
}

export function Page({ name, children }: { name: string; children: ReactNode }) {
  return <div className="page" data-page={name}>{children}</div>;
}
