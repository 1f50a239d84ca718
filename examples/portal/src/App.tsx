// The staff portal: sign in with a staff key, then customers, a customer's page, my open tasks
// and the retention dashboard. #/member is the member mini-app, with its own sign-in.
import { useCallback, useEffect, useState } from "react";
import { Provider } from "urql";
import type { Client } from "urql";
import { SessionDocument } from "./generated/graphql";
import type { SessionQuery } from "./generated/graphql";
import { PluginsContext } from "./plugins";
import { useRoute } from "./route";
import { clientFor, saveCredential, savedCredential } from "./session";
import { SignIn } from "./components/SignIn";
import { CustomerPage } from "./pages/CustomerPage";
import { CustomersPage } from "./pages/CustomersPage";
import { DashboardPage } from "./pages/DashboardPage";
import { MemberApp } from "./pages/MemberApp";
import { TasksPage } from "./pages/TasksPage";

interface Session {
  client: Client;
  data: SessionQuery;
}

/** Checks a key by asking who it is; the server's refusal comes back as the error. */
async function openSession(key: string): Promise<Session> {
  const client = clientFor(key);
  const answer = await client.query(SessionDocument, {}, { requestPolicy: "network-only" }).toPromise();
  if (answer.error) throw new Error(answer.error.graphQLErrors[0]?.message ?? answer.error.message);
  if (!answer.data) throw new Error("The server gave no answer.");
  if (answer.data.viewer.role === "MEMBER") throw new Error("A member token opens the member app, not the portal.");
  return { client, data: answer.data };
}

export function App() {
  const route = useRoute();
  if (route.page === "member") return <MemberApp />;
  return <StaffPortal />;
}

function StaffPortal() {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(() => savedCredential("staff") !== null);
  const [problem, setProblem] = useState("");

  const signIn = useCallback(async (key: string) => {
    try {
      const opened = await openSession(key);
      saveCredential("staff", key);
      setProblem("");
      setSession(opened);
      if (!location.hash) location.hash = "#/customers";
    } catch (error) {
      saveCredential("staff", null);
      setProblem((error as Error).message);
    }
  }, []);

  useEffect(() => {
    const saved = savedCredential("staff");
    if (saved) void signIn(saved).finally(() => setRestoring(false));
  }, [signIn]);

  if (restoring) return <main className="centered muted">Signing in…</main>;
  if (!session) {
    return <SignIn title="Sign in to Tenure" label="Staff API key" placeholder="tnr_…" onSubmit={signIn} error={problem} />;
  }
  const signOut = () => {
    saveCredential("staff", null);
    setSession(null);
    location.hash = "";
  };
  return (
    <Provider value={session.client}>
      <PluginsContext.Provider value={new Set(session.data.serverInfo.plugins.map((p) => p.name))}>
        <Shell session={session.data} onSignOut={signOut} />
      </PluginsContext.Provider>
    </Provider>
  );
}

const NAV = [
  { page: "customers", label: "Customers" },
  { page: "tasks", label: "My tasks" },
  { page: "dashboard", label: "Retention" },
];

function Shell({ session, onSignOut }: { session: SessionQuery; onSignOut: () => void }) {
  const route = useRoute();
  const who = session.viewer.staffUser?.name ?? session.viewer.name;
  const current = route.page === "customer" ? "customers" : route.page;
  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href="#/customers">
          <span className="logo" aria-hidden="true">T</span> Tenure
        </a>
        <nav id="nav" aria-label="Main">
          {NAV.map((item) => (
            <a key={item.page} href={`#/${item.page}`} className={current === item.page ? "active" : undefined}>
              {item.label}
            </a>
          ))}
        </nav>
        <div className="account">
          <span id="who">
            {who} <span className="role">{session.viewer.role.toLowerCase()}</span>
          </span>
          <button type="button" className="ghost" id="signout" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        {route.page === "customer" && route.id ? (
          <CustomerPage id={route.id} currency={session.serverInfo.currency} />
        ) : route.page === "tasks" ? (
          <TasksPage />
        ) : route.page === "dashboard" ? (
          <DashboardPage />
        ) : (
          <CustomersPage />
        )}
      </main>
      <footer className="footer muted">
        Tenure {session.serverInfo.version} · plugins: {session.serverInfo.plugins.filter((p) => p.name !== "core").map((p) => p.name).join(", ") || "none"}
      </footer>
    </div>
  );
}
