// Runs graphql-http's auditServer against a running Tenure server and fails on any result
// that is not ok (a warning included). Usage: node audit.mjs http://127.0.0.1:8000/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2] || process.env.TENURE_AUDIT_URL;
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint url>');
  process.exit(2);
}

const results = await auditServer({ url });
const counts = { ok: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  if (result.status !== 'ok') {
    const response = await result.response.text().catch(() => '(no body)');
    console.log(`${result.status.toUpperCase()} ${result.id} ${result.name}: ${result.reason}`);
    console.log(`  answered ${result.response.status} ${result.response.headers.get('content-type')}: ${response}`);
  }
}
console.log(`graphql-http audit of ${url}: ${counts.ok} ok, ${counts.warn} warnings, ${counts.error} errors`);
process.exit(counts.warn + counts.error === 0 ? 0 : 1);
