// A receiver of Tenure's webhooks that verifies every delivery with `standardwebhooks`, the
// reference library of the Standard Webhooks specification, before it acts on it.
//
//   npm ci
//   TENURE_WEBHOOK_SECRET=whsec_... node receiver.js 8080
//
// A delivery whose signature does not match its body, id and timestamp, or whose timestamp
// is more than five minutes from now (tampered or replayed), is refused with 400. One whose
// webhook-id was handled before is answered 200 and not handled again: Tenure sends a
// delivery again when it heard no answer, and a replay keeps the id. During a secret
// rotation each delivery is signed by the old and the new secret, so either one verifies.
"use strict";

const http = require("node:http");
const { Webhook, WebhookVerificationError } = require("standardwebhooks");

// Your code: event has id, type ("order.recorded", "import.completed", ...), customerId,
// occurredAt, summary and data. Answer fast; do slow work later.
function handleEvent(event) {
  console.log(JSON.stringify({ type: event.type, id: event.id, customerId: event.customerId }));
}

function createReceiver(secret, onEvent = handleEvent) {
  const webhook = new Webhook(secret);
  // A real receiver keeps the handled ids in its database, with the work they caused.
  const handled = new Set();
  return http.createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      let event;
      try {
        // The raw body, exactly as sent: a parsed and re-serialised one would not verify.
        event = webhook.verify(Buffer.concat(chunks), request.headers);
      } catch (error) {
        if (!(error instanceof WebhookVerificationError)) throw error;
        response.writeHead(400, { "Content-Type": "text/plain" }).end(`refused: ${error.message}`);
        return;
      }
      const webhookId = request.headers["webhook-id"];
      if (handled.has(webhookId)) {
        response.writeHead(200, { "Content-Type": "text/plain" }).end("already handled");
        return;
      }
      handled.add(webhookId);
      onEvent(event);
      response.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    });
  });
}

if (require.main === module) {
  const secret = process.env.TENURE_WEBHOOK_SECRET || "";
  if (!secret.startsWith("whsec_")) {
    console.error("set TENURE_WEBHOOK_SECRET to the subscription's secret (whsec_...)");
    process.exit(1);
  }
  const port = Number(process.argv[2] || 8080);
  createReceiver(secret).listen(port, process.env.HOST || "127.0.0.1", () => {
    console.error(`listening on http://${process.env.HOST || "127.0.0.1"}:${port}/`);
  });
}

module.exports = { createReceiver };
