import { useState } from "react";
import type { FormEvent } from "react";

interface Props {
  title: string;
  label: string;
  placeholder: string;
  error: string;
  onSubmit: (credential: string) => Promise<void>;
}

/** The one thing a signed-out visitor sees. */
export function SignIn({ title, label, placeholder, error, onSubmit }: Props) {
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    await onSubmit(value.trim());
    setBusy(false);
  };
  return (
    <main className="signin-page">
      <form className="card signin" id="signin" onSubmit={submit}>
        <div className="brand big">
          <span className="logo" aria-hidden="true">T</span> Tenure
        </div>
        <h1>{title}</h1>
        <label htmlFor="credential">{label}</label>
        <input id="credential" type="password" autoComplete="off" placeholder={placeholder} required
          value={value} onChange={(e) => setValue(e.target.value)} />
        <button type="submit" disabled={busy}>{busy ? "Checking…" : "Sign in"}</button>
        <p className="error" id="signin-error" role="alert">{error}</p>
      </form>
    </main>
  );
}
