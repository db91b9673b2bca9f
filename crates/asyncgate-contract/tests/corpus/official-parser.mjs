// Asks the official AsyncAPI JavaScript parser about each file given on the command line
// and prints one JSON line per file: {"file", "valid", "errors": [...]}.
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';

const parser = new Parser();
for (const file of process.argv.slice(2)) {
  const { document, diagnostics } = await parser.parse(readFileSync(file, 'utf8'));
  // severity 0 is error
  const errors = diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('/')}: ${d.message}`);
  console.log(JSON.stringify({ file, valid: document !== undefined, errors }));
}
