// Asks the official AsyncAPI JavaScript parser about each file given on the command line
// and prints one JSON line per file: {"file", "valid", "errors": [...]}. Each file is
// parsed with its own path as source, so relative $refs resolve from its folder.
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const parser = new Parser();
for (const file of process.argv.slice(2)) {
  const source = resolve(file);
  const { document, diagnostics } = await parser.parse(readFileSync(file, 'utf8'), { source });
  // severity 0 is error
  const errors = diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('/')}: ${d.message}`);
  console.log(JSON.stringify({ file, valid: document !== undefined, errors }));
}
