// The signed-in credential: a staff API key, or a member token for the member app. It stays in
// this tab's session storage only.
import { Client, cacheExchange, fetchExchange } from "urql";

export type Kind = "staff" | "member";
const storageKey = (kind: Kind) => `tenure.${kind}`;

export const savedCredential = (kind: Kind): string | null => sessionStorage.getItem(storageKey(kind));

export function saveCredential(kind: Kind, value: string | null): void {
  if (value) sessionStorage.setItem(storageKey(kind), value);
  else sessionStorage.removeItem(storageKey(kind));
}

export function clientFor(credential: string): Client {
  return new Client({
    url: "/graphql",
    exchanges: [cacheExchange, fetchExchange],
    requestPolicy: "cache-and-network",
    preferGetMethod: false,
    fetchOptions: () => ({ headers: { Authorization: `Bearer ${credential}` } }),
  });
}
