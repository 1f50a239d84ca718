// Runs the typed client against a Tenure server:
//   TENURE_URL=http://127.0.0.1:8000/graphql TENURE_STAFF_KEY=... TENURE_INTEGRATION_KEY=...
//   TENURE_MEMBER_TOKEN=... TENURE_CUSTOMER_ID=... npm run demo
// and prints what each call answered, as JSON.
import { TenureClient, TenureError, describe } from "./client.js";

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`set ${name}`);
  }
  return value;
}

const url = required("TENURE_URL");
const customerId = required("TENURE_CUSTOMER_ID");
const integration = new TenureClient(url, required("TENURE_INTEGRATION_KEY"));
const staff = new TenureClient(url, required("TENURE_STAFF_KEY"));
// The member app sends its documents by hash (TENURE_MEMBER_PERSISTED_ONLY on the server).
const member = new TenureClient(url, required("TENURE_MEMBER_TOKEN"), process.env.TENURE_PERSISTED === "1");

const recorded = await integration.recordOrder({
  customerId,
  channel: "web",
  externalId: "ts-demo-1",
  currency: "USD",
  lines: [{ sku: "TEA-1", quantity: 2, unitPrice: 1250, name: "Green tea" }],
});
let rejected: string[] = [];
try {
  await integration.recordOrder({ customerId, channel: "web", externalId: "ts-demo-2", currency: "euro", amount: 100 });
} catch (error) {
  if (!(error instanceof TenureError)) {
    throw error;
  }
  rejected = error.messages;
}
const page = await staff.portalCustomers(10);
const me = await member.me();

console.log(
  JSON.stringify({
    recorded,
    rejected,
    customers: page.nodes,
    totalCount: page.totalCount,
    lines: page.nodes.map(describe),
    me,
  }),
);
