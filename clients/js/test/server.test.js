// JS clients against the real `tandem` binary: concurrent typing, emoji, random edits with
// delays and dropped connections, offline edits (for longer than the server keeps in memory
// too), a server restart, title, counters, presence, and named versions. Every client must
// end with exactly the server's text.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';

import WebSocket from 'ws';

import { codePointLength, toUtf16 } from '../src/text.js';
import { rng, word } from './support/random.js';
import { BIN, Proxy, Server, client, converged, until } from './support/server.js';

/** @type {Server} */
let server;

before(async () => {
  server = await Server.start();
});

after(async () => {
  await server.close();
});

test('two clients typing at the same place at once converge, emoji included', async () => {
  const [a, b] = [client(server.url, 'same-place'), client(server.url, 'same-place')];
  await Promise.all([a.whenReady(), b.whenReady()]);
  a.insert(0, 'ABCD');
  await converged(server, 'same-place', [a, b]);
  // Both type at index 2 before hearing of the other; then one deletes around an emoji.
  a.insert(2, 'x😀');
  b.insert(2, 'y👩‍👩‍👧');
  b.delete(0, 1);
  a.insert(a.text.length, '中e\u0301');
  const document = await converged(server, 'same-place', [a, b]);
  assert.equal(a.text, document.text);
  assert.equal(b.text, document.text);
  assert.match(document.text, /^B/);
  assert.ok(document.text.includes('x😀') && document.text.includes('y👩‍👩‍👧'), document.text);
  // Deleting an emoji takes both of its UTF-16 units; half of one is refused locally.
  const at = a.text.indexOf('😀');
  assert.throws(() => a.delete(at, 1), /surrogate/);
  a.delete(at, 2);
  const last = await converged(server, 'same-place', [a, b]);
  assert.ok(!last.text.includes('😀') && !last.text.includes('\ufffd'), last.text);
  a.close();
  b.close();
});

test('a paste bigger than the server\'s message limit lands whole, in pieces', async () => {
  const [a, b] = [client(server.url, 'big-paste'), client(server.url, 'big-paste')];
  await Promise.all([a.whenReady(), b.whenReady()]);
  /** @type {string[]} */
  const statuses = [];
  a.on('status', (status) => statuses.push(status));
  // 300,000 code points of 4 bytes of UTF-8 each: 1.2 MB, over the default limit of 1 MiB.
  const text = '😀'.repeat(300_000);
  a.insert(0, text);
  const document = await converged(server, 'big-paste', [a, b]);
  assert.equal(document.text, text);
  assert.equal(document.revision, Math.ceil(300_000 / 65_536));
  assert.deepEqual(statuses, [], 'the connection never dropped');
  a.close();
  b.close();
});

test('remote changes arrive as events in UTF-16 positions of the local text', async () => {
  const [a, b] = [client(server.url, 'events'), client(server.url, 'events')];
  await Promise.all([a.whenReady(), b.whenReady()]);
  a.insert(0, '😀😀');
  await converged(server, 'events', [a, b]);
  /** @type {import('../src/client.js').TextChange[]} */
  const seen = [];
  b.on('change', (change) => seen.push(change));
  a.insert(2, '中');
  a.delete(0, 2);
  await converged(server, 'events', [a, b]);
  assert.deepEqual(seen.map(({ index, deleted, inserted, clientId }) => ({ index, deleted, inserted, clientId })), [
    { index: 2, deleted: 0, inserted: '中', clientId: a.clientId },
    { index: 0, deleted: 2, inserted: '', clientId: a.clientId },
  ]);
  assert.equal(b.text, '中😀');
  a.close();
  b.close();
});

test('title, counters and presence reach the others', async () => {
  const a = client(server.url, 'meta', { name: 'Ada', color: '#e11d48' });
  const b = client(server.url, 'meta');
  await Promise.all([a.whenReady(), b.whenReady()]);
  a.insert(0, 'one\ntwo 😀 three');
  a.setTitle('Plans');
  a.increment('likes');
  b.increment('likes', 2);
  await converged(server, 'meta', [a, b]);
  assert.equal(b.title, 'Plans');
  assert.equal(a.counter('likes'), 3);
  assert.equal(b.counter('likes'), 3);
  // a's caret, after the emoji on the second line, lands at the same UTF-16 index in b.
  const caret = a.text.indexOf(' three');
  a.moveCursor(caret);
  await until(() => b.users.some((u) => u.clientId === a.clientId && u.index === caret && u.name === 'Ada'), [b], 'a\'s caret at b');
  const ada = b.users.find((u) => u.clientId === a.clientId);
  assert.deepEqual(ada?.cursor, { line: 1, column: 5 }, 'code points on the wire');
  assert.equal(ada?.color, '#e11d48');
  // The caret moves with the text when someone types before it.
  b.insert(0, '>>');
  await converged(server, 'meta', [a, b]);
  assert.equal(b.users.find((u) => u.clientId === a.clientId)?.index, caret + 2);
  // A title over the server's limit is refused: an error, and the confirmed title again.
  const errors = /** @type {string[]} */ ([]);
  b.on('error', (error) => errors.push(error.code));
  b.setTitle('x'.repeat(300));
  await until(() => errors.includes('too_large'), [b], 'the refusal');
  assert.equal(b.title, 'Plans');
  a.close();
  await until(() => !b.users.some((u) => u.clientId === a.clientId), [b], 'a to leave');
  b.close();
});

test('edits made while offline land exactly once after the resume', async () => {
  const proxy = await Proxy.start(server.port);
  const a = client(proxy.url, 'offline');
  const b = client(server.url, 'offline');
  await Promise.all([a.whenReady(), b.whenReady()]);
  a.insert(0, '[a0]');
  await converged(server, 'offline', [a, b]);
  // The change in flight is cut off with the connection; more are typed while offline.
  a.insert(a.text.length, '[a1]');
  proxy.setOffline(true);
  await until(() => a.status === 'offline', [a], 'a offline');
  a.insert(a.text.length, '[a2]');
  a.insert(0, '[a3]');
  b.insert(0, '[b1]');
  await until(() => b.isSynced, [b], 'b synced');
  assert.equal(a.isSynced, false);
  proxy.setOffline(false);
  const document = await converged(server, 'offline', [a, b]);
  for (const token of ['[a0]', '[a1]', '[a2]', '[a3]', '[b1]']) {
    assert.equal(document.text.split(token).length - 1, 1, `${token} once in ${document.text}`);
  }
  assert.equal(a.text, document.text);
  a.close();
  b.close();
  await proxy.close();
});

test('a dropped connection whose change was applied but not acknowledged does not apply it twice', async () => {
  const proxy = await Proxy.start(server.port);
  const a = client(proxy.url, 'dropped');
  await a.whenReady();
  for (let i = 0; i < 30; i++) {
    a.insert(a.text.length, `<${i}>`);
    // Cut the connection at every stage of the change's round trip.
    if (i % 3 === 0) proxy.drop();
    if (i % 7 === 0) await until(() => a.status === 'online', [a], 'a online');
  }
  const document = await converged(server, 'dropped', [a]);
  assert.equal(document.text, Array.from({ length: 30 }, (_, i) => `<${i}>`).join(''));
  a.close();
  await proxy.close();
});

test('five clients making random edits with delays and dropped connections converge', async () => {
  const seed = Number(process.env.SEED ?? 7);
  const random = rng(seed);
  const proxies = await Promise.all(Array.from({ length: 5 }, () => Proxy.start(server.port)));
  const clients = proxies.map((proxy) => client(proxy.url, 'swarm', { minDelay: 5, maxDelay: 50, random: random.next }));
  await Promise.all(clients.map((c) => c.whenReady()));
  let edits = 0;
  for (let step = 0; step < 600; step++) {
    const n = random.below(clients.length);
    const c = clients[n];
    const length = codePointLength(c.text);
    const roll = random.below(100);
    if (roll < 55 || length === 0) {
      c.insert(toUtf16(c.text, random.below(length + 1)), word(random, 3));
      edits++;
    } else if (roll < 90) {
      const start = random.below(length);
      const end = Math.min(length, start + 1 + random.below(4));
      const from = toUtf16(c.text, start);
      c.delete(from, toUtf16(c.text, end) - from);
      edits++;
    } else if (roll < 95) {
      proxies[n].drop();
    } else {
      c.moveCursor(toUtf16(c.text, random.below(length + 1)));
    }
    // Let the network run now and then, for a random few milliseconds' worth of messages.
    if (random.below(10) === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const document = await converged(server, 'swarm', clients);
  for (const [i, c] of clients.entries()) assert.equal(c.text, document.text, `seed ${seed}: client ${i}`);
  assert.ok(document.revision > edits / 2, `seed ${seed}: only ${document.revision} revisions for ${edits} edits`);
  for (const c of clients) c.close();
  await Promise.all(proxies.map((proxy) => proxy.close()));
});

test('edits made offline while others make more changes than the server keeps in memory land', async () => {
  const proxy = await Proxy.start(server.port);
  const a = client(proxy.url, 'far');
  await a.whenReady();
  a.insert(0, 'kept');
  await a.whenSynced();
  proxy.setOffline(true);
  await until(() => a.status === 'offline', [a], 'a offline');
  a.insert(4, ' and not lost 🧳');
  /** @type {string[]} */
  const seen = [];
  a.on('lost', () => seen.push('lost'));
  a.on('reset', () => seen.push('reset'));
  // Someone else makes more revisions than the server's history in memory holds (1,000).
  const writer = new WebSocket(`ws://127.0.0.1:${server.port}/ws/far`);
  await new Promise((resolve) => writer.once('message', resolve));
  for (let i = 0; i < 1005; i++) {
    const acked = new Promise((resolve) => writer.once('message', resolve));
    writer.send(JSON.stringify({ type: 'insert', id: i, revision: 1 + i, index: 0, text: '.' }));
    await acked;
  }
  writer.close();
  proxy.setOffline(false);
  const document = await converged(server, 'far', [a]);
  assert.equal(document.text, `${'.'.repeat(1005)}kept and not lost 🧳`);
  assert.deepEqual(seen, [], 'resumed, not started afresh');
  a.close();
  await proxy.close();
});

test('versions are saved and restored over the WebSocket, and everyone sees the restore', async () => {
  const [a, b] = [client(server.url, 'versions'), client(server.url, 'versions')];
  await Promise.all([a.whenReady(), b.whenReady()]);
  a.insert(0, 'draft 📝');
  await a.whenSynced();
  const saved = await a.saveVersion('first');
  assert.equal(saved.label, 'first');
  assert.equal(saved.revision, a.revision);
  assert.match(saved.created_at, /^\d{4}-\d\d-\d\dT/);
  await assert.rejects(a.saveVersion('first'), { code: 'conflict' });
  b.insert(b.text.length, ', and then 👀');
  await converged(server, 'versions', [a, b]);
  const revision = await a.restoreVersion('first');
  const document = await converged(server, 'versions', [a, b]);
  assert.equal(document.text, 'draft 📝');
  assert.ok(a.revision >= revision);
  await assert.rejects(b.restoreVersion('no-such'), { code: 'not_found' });
  const listed = await (await fetch(`${server.url}/api/docs/versions/versions`)).json();
  assert.deepEqual(listed.versions.map((/** @type {any} */ v) => v.label), ['first']);
  a.close();
  b.close();
});

test('a server restart mid-session loses no acknowledged or pending edit', async () => {
  const durable = await Server.start({ persistent: true });
  try {
    const [a, b] = [client(durable.url, 'restart'), client(durable.url, 'restart')];
    await Promise.all([a.whenReady(), b.whenReady()]);
    a.insert(0, '[a0]');
    b.insert(0, '[b0]');
    await converged(durable, 'restart', [a, b]);
    await durable.restart({ kill: true });
    a.insert(a.text.length, '[a1]');
    b.insert(0, '[b1]');
    await durable.restart();
    const document = await converged(durable, 'restart', [a, b]);
    for (const token of ['[a0]', '[b0]', '[a1]', '[b1]']) {
      assert.equal(document.text.split(token).length - 1, 1, `${token} once in ${document.text}`);
    }
    a.close();
    b.close();
  } finally {
    await durable.close();
  }
});

test('with a secret, a token from `tandem token` opens its document, read-only or not', async () => {
  const secret = 'a secret of more than sixteen bytes';
  const secured = await Server.start({ args: ['--auth-secret', secret] });
  try {
    /** @param {string[]} args */
    const mint = (args) => execFileSync(BIN, ['token', '--auth-secret', secret, ...args], { encoding: 'utf8' }).trim();
    const writer = client(secured.url, 'secret', { token: mint(['--doc', 'secret']) });
    const reader = client(secured.url, 'secret', { token: mint(['--doc', 'secret', '--access', 'read']) });
    await Promise.all([writer.whenReady(), reader.whenReady()]);
    writer.insert(0, 'for your eyes 👀');
    await until(() => reader.text === 'for your eyes 👀', [writer, reader], 'the reader seeing the text');
    /** @type {string[]} */
    const errors = [];
    reader.on('error', (error) => errors.push(error.code));
    reader.insert(0, 'no: ');
    await until(() => errors.includes('forbidden'), [reader], 'the reader refused');
    // Refused, so the reader starts again from the server's text, its edit reported lost.
    await until(() => reader.text === 'for your eyes 👀' && reader.status === 'online', [reader], 'the reader resynced');
    // Without a token, or with one for another document, the server refuses the upgrade.
    const statuses = [];
    for (const token of [undefined, mint(['--doc', 'elsewhere'])]) {
      const socket = new WebSocket(`ws://127.0.0.1:${secured.port}/ws/secret${token ? `?token=${token}` : ''}`);
      statuses.push(await new Promise((resolve) => socket.on('unexpected-response', (_, response) => resolve(response.statusCode))));
    }
    assert.deepEqual(statuses, [401, 403]);
    writer.close();
    reader.close();
  } finally {
    await secured.close();
  }
});

test('a token function is asked again when the token expires, and the session resumes', async () => {
  const secret = 'a secret of more than sixteen bytes';
  const secured = await Server.start({ args: ['--auth-secret', secret] });
  try {
    /** @param {string} ttl */
    const mint = (ttl) => execFileSync(BIN, ['token', '--auth-secret', secret, '--doc', 'expiring', '--ttl', ttl], { encoding: 'utf8' }).trim();
    // The first token lasts two or three seconds; every later one an hour.
    const ttls = ['3s'];
    let asked = 0;
    const writer = client(secured.url, 'expiring', {
      token: async () => {
        asked++;
        return mint(ttls.shift() ?? '1h');
      },
    });
    const reader = client(secured.url, 'expiring', { token: mint('1h') });
    await Promise.all([writer.whenReady(), reader.whenReady()]);
    const id = writer.clientId;
    writer.insert(0, 'before 🕰️');
    await writer.whenSynced();
    /** @type {string[]} */
    const statuses = [];
    writer.on('status', (status) => statuses.push(status));
    // The server closes the connection at the expiry; the client asks for a new token.
    await until(() => asked === 2 && writer.status === 'online', [writer], 'the writer back with a fresh token');
    assert.ok(statuses.includes('offline'), statuses.join());
    assert.equal(writer.clientId, id);
    writer.insert(writer.text.length, ', after');
    await until(() => reader.text === 'before 🕰️, after', [writer, reader], 'the reader seeing both edits');
    writer.close();
    reader.close();
  } finally {
    await secured.close();
  }
});

test('changes refused as sent too fast go out again later, none lost and none resynced', async () => {
  // At 20 messages a second with bursts of 5, a hundred edits in a row are refused often.
  const slow = await Server.start({ args: ['--message-rate', '20', '--message-burst', '5'] });
  try {
    const writer = client(slow.url, 'throttled', { minDelay: 20, maxDelay: 200 });
    const reader = client(slow.url, 'throttled');
    await Promise.all([writer.whenReady(), reader.whenReady()]);
    /** @type {string[]} */
    const seen = [];
    // A caret update refused as too fast is reported as `rate_limited` (and not resent: the
    // next one replaces it); a change so refused is resent, not reported.
    writer.on('error', (error) => {
      if (error.code !== 'rate_limited') seen.push(error.code);
    });
    writer.on('lost', () => seen.push('lost'));
    writer.on('reset', () => seen.push('reset'));
    let expected = '';
    for (let i = 0; i < 100; i++) {
      const piece = i % 10 === 0 ? '👍' : String(i % 10);
      // Each at the start, so that no two merge into one change: a hundred messages go out,
      // however fast the acks come back.
      writer.insert(0, piece);
      expected = piece + expected;
    }
    await writer.whenSynced();
    await until(() => reader.text === expected, [writer, reader], 'the reader seeing every edit');
    assert.equal(writer.text, expected);
    assert.deepEqual(seen, []);
    // And the server did refuse some of them.
    const metrics = await (await fetch(`${slow.url}/metrics`)).text();
    const refused = Number(/^tandem_refusals_total\{reason="rate"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
    assert.ok(refused > 0, metrics);
    writer.close();
    reader.close();
  } finally {
    await slow.close();
  }
});
