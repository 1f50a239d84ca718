// A typed Tenure client: every request and answer below is checked against the types that
// `npm run codegen` generates from ../../schema.graphql, so a schema change that breaks an
// operation breaks `npm run build` instead of the app.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";

import {
  MeDocument,
  PortalCustomersDocument,
  RecordOrderDocument,
  type MeQuery,
  type PortalCustomersQuery,
  type RecordOrderInput,
  type RecordOrderMutation,
} from "./generated/graphql.js";

export class TenureError extends Error {
  constructor(readonly messages: string[]) {
    super(messages.join("; "));
  }
}

/** The SHA-256 of a document's text, in hex: its key in persisted-documents.json. */
export async function documentHash(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export class TenureClient {
  // `token` is a staff/integration API key or a member token: both go as a Bearer token.
  // `persisted`: send each document by its hash alone, as a member app must when the server
  // holds member tokens to its persisted documents (`npm run persisted` writes the manifest).
  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly persisted = false,
  ) {}

  async request<Result, Variables>(document: TypedDocumentNode<Result, Variables>, variables: Variables): Promise<Result> {
    const text = print(document);
    const body = this.persisted
      ? { extensions: { persistedQuery: { version: 1, sha256Hash: await documentHash(text) } }, variables }
      : { query: text, variables };
    const response = await fetch(this.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${this.token}` },
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as { data?: Result; errors?: { message: string }[] };
    if (answer.errors?.length || answer.data === undefined) {
      throw new TenureError(answer.errors?.map((e) => e.message) ?? [`HTTP ${response.status}`]);
    }
    return answer.data;
  }

  /** One page of customers with their points, tier and churn risk (staff key). */
  async portalCustomers(first: number, after: string | null = null, search: string | null = null) {
    const data: PortalCustomersQuery = await this.request(PortalCustomersDocument, { first, after, search });
    return data.customers;
  }

  /** What the member app shows (member token). */
  async me(): Promise<MeQuery["me"]> {
    return (await this.request(MeDocument, {})).me;
  }

  /** Record an order (integration key); userErrors become a TenureError naming the fields. */
  async recordOrder(input: RecordOrderInput) {
    const data: RecordOrderMutation = await this.request(RecordOrderDocument, { input });
    const { userErrors, order, created } = data.recordOrder;
    if (userErrors.length > 0) {
      throw new TenureError(userErrors.map((e) => (e.field ? `${e.field.join(".")}: ${e.message}` : e.message)));
    }
    return { order, created };
  }
}

/** A line for the portal's customer list, from the generated types alone. */
export function describe(customer: PortalCustomersQuery["customers"]["nodes"][number]): string {
  const tier = customer.tier.tier?.name ?? "no tier";
  const risk = customer.churnRisk ? `${customer.churnRisk.level} (${customer.churnRisk.score})` : "not scored";
  const spent = `${customer.totalSpent.amount} ${customer.totalSpent.currency}`;
  return `${customer.name}: ${customer.points.balance} points, ${tier}, risk ${risk}, spent ${spent}`;
}
