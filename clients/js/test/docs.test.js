// docs/clients.md stays true: its complete Node program runs against the real server and does
// what it says.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { Server } from './support/server.js';

const DOC = readFileSync(new URL('../../../docs/clients.md', import.meta.url), 'utf8');

/** @param {string} info the fence's info string, such as `js example-node` */
function example(info) {
  const match = new RegExp(`\`\`\`${info}\\n([\\s\\S]*?)\`\`\``).exec(DOC);
  assert.ok(match, `docs/clients.md has a \`\`\`${info} block`);
  return match[1];
}

test('the Node program in docs/clients.md runs and its edit reaches the server', async () => {
  const server = await Server.start();
  try {
    const program = example('js example-node');
    const child = spawn(process.execPath, ['--input-type=module'], {
      // From the package folder, so that `tandem-client` resolves to this package and `ws` to
      // its dev dependency.
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, TANDEM_URL: server.url },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.stdin.end(program);
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    assert.equal(output, 'revision 2: "Hello from Node 👋\\n"\n');
    const document = await server.document('hello');
    assert.equal(document.text, 'Hello from Node 👋\n');
    assert.deepEqual(document.counters, { likes: 1 });
  } finally {
    await server.close();
  }
});
