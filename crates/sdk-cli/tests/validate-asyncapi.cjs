// Parses AsyncAPI documents with the real @asyncapi/parser and fails on any diagnostic
// of severity error, or on a message example that its own payload or headers schema
// refuses (checked with ajv, the parser's own JSON Schema validator). With two files
// (the YAML and the JSON form of one document), they must also parse to the same
// document.
//   node validate-asyncapi.cjs doc.yaml [doc.json]
// NODE_PATH must point at the node_modules that holds @asyncapi/parser.
const fs = require('fs');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

const Ajv = require('ajv');
const addFormats = require('ajv-formats');

const ERROR = DiagnosticSeverity ? DiagnosticSeverity.Error : 0;

// Every example against its message's schemas; returns the number of failures.
function checkExamples(file, document) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  let failures = 0;
  let checked = 0;
  for (const message of document.allMessages()) {
    for (const example of message.examples()) {
      const parts = [
        ['payload', message.hasPayload() && message.payload(), example.hasPayload() && example.payload()],
        ['headers', message.hasHeaders() && message.headers(), example.hasHeaders() && example.headers()],
      ];
      for (const [part, schema, value] of parts) {
        if (!schema || value === undefined || value === false) continue;
        checked += 1;
        if (!ajv.validate(schema.json(), value)) {
          failures += 1;
          console.log(JSON.stringify({ file, message: `example ${part} of ${message.id()} does not match its schema`, errors: ajv.errors }));
        }
      }
    }
  }
  if (checked === 0) {
    console.log(JSON.stringify({ file, message: 'no example was checked' }));
    failures += 1;
  }
  return failures;
}

(async () => {
  const parser = new Parser();
  const parsed = [];
  let failed = false;
  for (const file of process.argv.slice(2)) {
    const { document, diagnostics } = await parser.parse(fs.readFileSync(file, 'utf8'));
    for (const d of diagnostics) {
      console.log(JSON.stringify({ file, severity: d.severity, code: d.code, message: d.message, path: d.path }));
    }
    if (!document || diagnostics.some((d) => d.severity === ERROR)) {
      failed = true;
    }
    if (document) {
      parsed.push(JSON.stringify(document.json()));
      if (checkExamples(file, document) > 0) {
        failed = true;
      }
    }
  }
  if (parsed.length === 2 && parsed[0] !== parsed[1]) {
    console.log(JSON.stringify({ message: 'the two files parse to different documents' }));
    failed = true;
  }
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
