// Validates AsyncAPI documents with the official parser (@asyncapi/parser), as `asyncapi validate` does.
// Usage: node validate_asyncapi.mjs <node_modules dir> <file>...   Prints one JSON line per file:
// {"file", "valid", "channels", "operations", "diagnostics": [{"severity", "code", "message", "path"}]}; exit 1 if any is invalid.
import { createRequire } from "node:module";
import path from "node:path";

const [modules, ...files] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), "noop.js"));
const { Parser, fromFile } = require("@asyncapi/parser");
const parser = new Parser();
let failed = false;
for (const file of files) {
  const { document, diagnostics } = await fromFile(parser, file).parse();
  const errors = diagnostics.filter((d) => d.severity === 0);
  const valid = document !== undefined && errors.length === 0;
  failed ||= !valid;
  const channels = document ? document.channels().all().map((c) => c.address()) : [];
  const operations = document ? document.operations().all().map((o) => {
    const mqtt = o.bindings().get("mqtt");
    const b = mqtt ? mqtt.value() : {};
    return {
      id: o.id(), action: o.action(), channels: o.channels().all().map((c) => c.address()),
      qos: b.qos ?? null, retain: b.retain ?? null,
      payloads: o.messages().all().map((m) => (m.payload() ? m.payload().title() ?? null : null)),
    };
  }) : [];
  console.log(JSON.stringify({
    file, valid, channels, operations,
    diagnostics: diagnostics.map((d) => ({ severity: d.severity, code: d.code, message: d.message, path: d.path.join(".") })),
  }));
}
process.exit(failed ? 1 : 0);
