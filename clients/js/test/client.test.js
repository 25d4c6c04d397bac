// TandemClient's connection handling and API edge, against a fake WebSocket and mocked timers:
// nothing here waits for real time.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';

import { TandemClient } from '../src/client.js';

/** A WebSocket the test drives: it opens, delivers and closes when told. */
class FakeSocket {
  /** @type {FakeSocket[]} */
  static made = [];

  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {any[]} */
    this.sent = [];
    /** @type {((event: {data: string}) => void) | null} */
    this.onmessage = null;
    /** @type {(() => void) | null} */
    this.onclose = null;
    this.onerror = null;
    FakeSocket.made.push(this);
  }

  /** @param {string} data */
  send(data) {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(JSON.parse(data));
  }

  close() {
    this.readyState = 3;
  }

  /** The server's side: the first message, after the socket opens. @param {any} message */
  welcome(message) {
    this.readyState = 1;
    this.deliver(message);
  }

  /** @param {any} message */
  deliver(message) {
    this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }

  /** The sent messages that carry a request id (the changes). */
  changes() {
    return this.sent.filter((message) => message.id !== undefined && message.type !== 'ping');
  }

  static last() {
    return /** @type {FakeSocket} */ (FakeSocket.made[FakeSocket.made.length - 1]);
  }
}

/** @param {Record<string, unknown>} [fields] */
const welcome = (fields = {}) => ({ type: 'welcome', client_id: 'c1', doc: 'd', revision: 0, text: '', title: '', counters: {}, users: [], ...fields });

/** @param {Partial<import('../src/client.js').Options>} [options] */
function connected(options = {}) {
  const client = new TandemClient({ doc: 'd', url: 'ws://server', WebSocket: /** @type {any} */ (FakeSocket), random: () => 1, ...options });
  /** @type {string[]} */
  const statuses = [];
  client.on('status', (status) => statuses.push(status));
  client.connect();
  return { client, statuses };
}

/**
 * Lets `ms` of mocked time pass, a millisecond at a time: Node 20's mock places a timer set
 * inside a callback relative to the end of the tick it runs in, so one long tick would move it.
 * @param {number} ms
 */
function advance(ms) {
  for (let i = 0; i < ms; i++) mock.timers.tick(1);
}

beforeEach(() => {
  FakeSocket.made = [];
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
});

afterEach(() => {
  mock.timers.reset();
});

test('typing while the client resyncs after a refusal is kept on screen and reported lost', () => {
  const { client } = connected();
  FakeSocket.last().welcome(welcome({ text: 'abc' }));
  /** @type {{changes: any[], text: string}[]} */
  const lost = [];
  client.on('lost', (event) => lost.push(event));
  client.insert(3, 'X');
  // The server refuses the change: the client starts again from a fresh welcome.
  FakeSocket.last().deliver({ type: 'error', id: 1, code: 'too_large', message: 'too big' });
  const resync = FakeSocket.last();
  assert.equal(new URL(resync.url).searchParams.get('since'), null, 'no resume: a fresh welcome');
  assert.equal(client.status, 'resyncing');
  // The user goes on typing meanwhile: the local text has it, nothing is sent.
  client.insert(client.text.length, ' important words');
  assert.equal(client.text, 'abcX important words');
  resync.welcome(welcome({ text: 'abc', revision: 0 }));
  assert.deepEqual(resync.changes(), []);
  assert.equal(client.text, 'abc');
  assert.equal(lost.length, 1);
  assert.equal(lost[0]?.text, 'abcX important words', 'the lost text holds everything typed');
  assert.equal(lost[0]?.changes.length, 2, 'the refused change and the typing after it');
  client.close();
});

test('edits that are not strings or not well-placed are refused and change nothing', () => {
  const { client } = connected();
  FakeSocket.last().welcome(welcome({ text: 'a😀c' }));
  for (const text of [5, null, {}, undefined]) {
    assert.throws(() => client.replace(0, 1, /** @type {any} */ (text)), TypeError, String(text));
  }
  assert.throws(() => client.setTitle(/** @type {any} */ (7)), TypeError);
  for (const edit of [{ type: 'insert', index: -5, text: 'x' }, { type: 'insert', index: NaN, text: 'x' }, { type: 'insert', index: 1.5, text: 'x' }, { type: 'insert', index: 4, text: 'x' }]) {
    assert.throws(() => client.applyEdits([/** @type {any} */ (edit)]), RangeError, JSON.stringify(edit));
  }
  assert.throws(() => client.applyEdits([/** @type {any} */ ({ type: 'delte', index: 0, length: 1 })]), TypeError);
  assert.equal(client.text, 'a😀c');
  assert.deepEqual(FakeSocket.last().changes(), []);
  client.close();
});

test('a connection that never brings its first message is given up and tried again', () => {
  const { client, statuses } = connected({ connectTimeout: 1_000, minDelay: 100, maxDelay: 100 });
  const first = FakeSocket.last();
  advance(999);
  assert.equal(FakeSocket.made.length, 1);
  advance(1);
  assert.equal(first.readyState, 3, 'the silent socket was closed');
  assert.equal(client.status, 'offline');
  advance(100);
  assert.equal(FakeSocket.made.length, 2, 'and a new one opened');
  FakeSocket.last().welcome(welcome());
  assert.deepEqual(statuses, ['connecting', 'offline', 'connecting', 'online']);
  client.close();
});

test('a dead connection is noticed even when the ping timeout is longer than the interval', () => {
  const { client } = connected({ pingInterval: 100, pingTimeout: 250 });
  const socket = FakeSocket.last();
  socket.welcome(welcome());
  assert.equal(client.status, 'online');
  // Pings go out every 100 ms and nothing answers: the first one's timer is not postponed.
  advance(100 + 249);
  assert.equal(client.status, 'online');
  advance(1);
  assert.equal(client.status, 'offline');
  assert.ok(socket.sent.filter((message) => message.type === 'ping').length >= 3);
  client.close();
});

test('a frame that is not a JSON object is reported, not thrown', () => {
  const { client } = connected();
  const socket = FakeSocket.last();
  socket.welcome(welcome({ text: 'abc' }));
  /** @type {string[]} */
  const errors = [];
  client.on('error', (error) => errors.push(error.code));
  for (const frame of ['null', '[1]', '3', 'not json']) socket.deliver(frame);
  assert.deepEqual(errors, ['invalid_json', 'invalid_json', 'invalid_json', 'invalid_json']);
  assert.equal(client.text, 'abc');
  assert.equal(client.status, 'online');
  client.close();
});

test('close() rejects whoever waits for sync, and caret updates resume after a reconnect', async () => {
  const { client } = connected({ cursorInterval: 50 });
  FakeSocket.last().welcome(welcome({ text: 'hello world' }));
  client.insert(0, '>');
  const synced = client.whenSynced();
  // A caret move held back by the interval, then close: the held timer must not stick.
  client.moveCursor(1);
  client.moveCursor(3);
  client.close();
  await assert.rejects(synced, /closed/);
  client.connect();
  FakeSocket.last().welcome(welcome({ text: 'hello world', revision: 1 }));
  const socket = FakeSocket.last();
  client.moveCursor(5);
  advance(50);
  client.moveCursor(7);
  advance(50);
  const columns = socket.sent.filter((message) => message.type === 'cursor_move').map((message) => message.column);
  assert.equal(columns[columns.length - 1], 7, `the last caret position went out: ${JSON.stringify(columns)}`);
  client.close();
});
