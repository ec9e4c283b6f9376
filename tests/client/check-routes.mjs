// Usage: node check-routes.mjs DOCUMENT PROGRAM
// Fails (exit 1) listing every (method, path) of DOCUMENT's `paths` that
// PROGRAM does not call as `client.METHOD("/path"`. Comments are ignored.
import { readFileSync } from "node:fs";

const [documentPath, programPath] = process.argv.slice(2);
if (!documentPath || !programPath) {
  console.error("usage: node check-routes.mjs DOCUMENT PROGRAM");
  process.exit(2);
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const document = JSON.parse(readFileSync(documentPath, "utf8"));
const routes = [];
for (const [path, item] of Object.entries(document.paths ?? {})) {
  for (const method of METHODS) {
    if (item && typeof item === "object" && method in item) routes.push(`${method.toUpperCase()} ${path}`);
  }
}

const source = readFileSync(programPath, "utf8")
  .replace(/\/\*[\s\S]*?\*\//g, "") // block comments
  .replace(/(^|\s)\/\/.*$/gm, "$1"); // line comments (not the // of a URL)
const called = new Set();
const call = /\bclient\s*\.\s*(GET|PUT|POST|DELETE|OPTIONS|HEAD|PATCH|TRACE)\s*\(\s*["'`]([^"'`]+)["'`]/g;
for (const m of source.matchAll(call)) called.add(`${m[1]} ${m[2]}`);

const missing = routes.filter((r) => !called.has(r));
const unknown = [...called].filter((r) => !routes.includes(r));
if (unknown.length) console.log(`calls to routes not in the document (tsc should have refused them): ${unknown.join(", ")}`);
if (missing.length) {
  console.log(`routes not covered by ${programPath} (${missing.length} of ${routes.length}):`);
  for (const r of missing) console.log(`  ${r}`);
  process.exit(1);
}
console.log(`all ${routes.length} operations called`);
