// Writes persisted-documents.json: every operation of the generated client, printed as the
// client sends it, keyed by its SHA-256. Give the file to the server as
// TENURE_PERSISTED_DOCUMENTS; with TENURE_MEMBER_PERSISTED_ONLY=true member tokens may run
// these documents and no other.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { print } from "graphql";

import * as generated from "../dist/generated/graphql.js";

const manifest = {};
for (const [name, value] of Object.entries(generated)) {
  if (name.endsWith("Document") && value?.kind === "Document") {
    const text = print(value);
    manifest[createHash("sha256").update(text).digest("hex")] = text;
  }
}
writeFileSync("persisted-documents.json", JSON.stringify(manifest, null, 2) + "\n");
console.log(`persisted-documents.json: ${Object.keys(manifest).length} documents`);
