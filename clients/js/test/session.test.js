// The protocol state machine, message by message, as docs/protocol.md's client algorithm says.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MAX_INSERT_CHARS, Session, SessionError } from '../src/session.js';

/** @param {Partial<Record<string, unknown>>} [fields] */
function welcome(fields = {}) {
  return { type: 'welcome', client_id: 'c1', doc: 'notes', revision: 12, text: 'ABCD', title: '', counters: {}, users: [], ...fields };
}

test('one change is in flight; typing behind it merges into one buffered insert', () => {
  const session = new Session(welcome());
  assert.deepEqual(session.insert(4, 'x'), { type: 'insert', id: 1, revision: 12, index: 4, text: 'x' });
  assert.equal(session.insert(5, 'y'), null, 'waits behind the change in flight');
  assert.equal(session.insert(6, 'z'), null);
  assert.equal(session.text, 'ABCDxyz');
  assert.deepEqual(session.receive({ type: 'ack', id: 1, revision: 13 }).send, {
    type: 'insert', id: 2, revision: 13, index: 5, text: 'yz',
  });
  assert.deepEqual(session.receive({ type: 'ack', id: 2, revision: 14 }).send, null);
  assert.equal(session.isSynced, true);
  assert.equal(session.revision, 14);
});

test('backspace and forward delete behind a change in flight merge', () => {
  const session = new Session(welcome({ text: 'abcdef' }));
  session.setTitle('t');
  session.delete(4, 1); // e
  session.delete(3, 1); // backspace: d
  session.delete(3, 1); // forward delete: f
  assert.equal(session.text, 'abc');
  assert.deepEqual(session.receive({ type: 'ack', id: 1, revision: 13 }).send, {
    type: 'delete', id: 2, revision: 13, index: 3, length: 3,
  });
});

test('the ABCD case: a remote delete is transformed past the insert in flight', () => {
  const session = new Session(welcome());
  session.insert(3, 'X');
  const { changes } = session.receive({ type: 'delete', client_id: 'c2', revision: 13, index: 1, length: 1 });
  assert.equal(session.text, 'ACXD');
  assert.deepEqual(changes.map(({ index, deleted, inserted }) => ({ index, deleted, inserted })), [
    { index: 1, deleted: 1, inserted: '' },
  ]);
  assert.equal(session.revision, 13);
  // The ack comes after the remote change, which the server applied first.
  session.receive({ type: 'ack', id: 1, revision: 14 });
  assert.equal(session.revision, 14);
});

test('a remote insert goes past the in-flight change and the buffer, in code points', () => {
  const session = new Session(welcome({ text: '😀😀' }));
  session.insert(2, 'a'); // in flight
  session.delete(0, 1); // buffered: the first emoji
  const { changes } = session.receive({ type: 'insert', client_id: 'c2', revision: 13, index: 1, text: '中' });
  assert.equal(session.text, '中😀a');
  assert.deepEqual(changes[0].edit, { type: 'insert', index: 0, text: '中' }, 'after the buffered delete');
  assert.equal(changes[0].index, 0);
  session.receive({ type: 'ack', id: 1, revision: 14 });
  assert.deepEqual(session.pollSend(), null, 'the buffered delete already went out with the ack');
});

test('a remote edit that does not fit the server text is divergence', () => {
  const session = new Session(welcome());
  session.insert(0, 'xx');
  // The server's text is 4 long: index 5 cannot be in it, even though the local text is 6.
  assert.throws(
    () => session.receive({ type: 'insert', client_id: 'c2', revision: 13, index: 5, text: 'y' }),
    (error) => error instanceof SessionError && error.code === 'diverged',
  );
});

test('a refused title is dropped and what waited behind it goes out', () => {
  const session = new Session(welcome({ title: 'Old' }));
  session.setTitle('New');
  session.incrementCounter('likes', 1);
  assert.equal(session.title, 'New');
  const received = session.receive({ type: 'error', id: 1, code: 'too_large', message: 'too long' });
  assert.equal(session.title, 'Old');
  assert.equal(received.refused?.code, 'too_large');
  assert.deepEqual(received.send, { type: 'increment_counter', id: 2, name: 'likes', amount: 1 });
});

test('a refused text change desyncs the session', () => {
  const session = new Session(welcome());
  session.insert(0, 'x');
  assert.throws(
    () => session.receive({ type: 'error', id: 1, code: 'out_of_range', message: 'no' }),
    (error) => error instanceof SessionError && error.code === 'desynced' && error.change?.kind === 'text',
  );
  // Edits until the fresh welcome stay local and are not sent; the welcome reports them lost.
  assert.equal(session.insert(0, 'y'), null);
  assert.equal(session.setTitle('t'), null);
  assert.equal(session.text, 'yxABCD');
  const { lost, reset } = session.reconnected(welcome({ revision: 13, text: 'ABCD' }));
  assert.equal(reset, true);
  assert.deepEqual(lost.map((change) => change.kind), ['text', 'title']);
  assert.equal(session.text, 'ABCD');
});

test('a counter shows pending increments and takes the acked value', () => {
  const session = new Session(welcome({ counters: { likes: 2 } }));
  session.incrementCounter('likes', 1);
  session.incrementCounter('likes', 1);
  assert.equal(session.counter('likes'), 4);
  session.receive({ type: 'increment_counter', client_id: 'c2', revision: 13, name: 'likes', amount: 5, value: 7 });
  assert.equal(session.counter('likes'), 9);
  session.receive({ type: 'ack', id: 1, revision: 14, value: 8 });
  assert.equal(session.counter('likes'), 9);
  session.receive({ type: 'ack', id: 2, revision: 15, value: 9 });
  assert.equal(session.counter('likes'), 9);
  assert.equal(session.isSynced, true);
});

test('an ack for anything but the change in flight is an error', () => {
  const session = new Session(welcome());
  session.insert(0, 'x');
  assert.throws(() => session.receive({ type: 'ack', id: 7, revision: 13 }), /ack arrived for 7/);
});

test('after resumed, missed changes come first, then the change in flight goes out again', () => {
  const session = new Session(welcome());
  assert.equal(session.insert(4, 'x')?.id, 1); // sent, then the connection dropped
  session.insert(5, 'y'); // buffered while offline
  const { send } = session.reconnected({ type: 'resumed', client_id: 'c1', doc: 'notes', revision: 12, head: 14, users: [] });
  assert.equal(send, null, 'nothing new while catching up');
  assert.equal(session.receive({ type: 'insert', client_id: 'c2', revision: 13, index: 0, text: '!' }).send, null);
  const resent = session.receive({ type: 'delete', client_id: 'c2', revision: 14, index: 1, length: 1 }).send;
  assert.deepEqual(resent, { type: 'insert', id: 1, revision: 14, index: 4, text: 'x' }, 'same id, transformed, at head');
  assert.equal(session.text, '!BCDxy');
});

test('after resumed, a missed ack acknowledges the change in flight and the next one goes out', () => {
  const session = new Session(welcome());
  session.insert(4, 'x');
  session.insert(5, 'y');
  session.reconnected({ type: 'resumed', client_id: 'c1', doc: 'notes', revision: 12, head: 13, users: [] });
  const { send } = session.receive({ type: 'ack', id: 1, revision: 13 });
  assert.deepEqual(send, { type: 'insert', id: 2, revision: 13, index: 5, text: 'y' });
});

test('a welcome instead of resumed starts again and reports the unacknowledged changes', () => {
  const session = new Session(welcome());
  session.insert(0, 'x');
  session.setTitle('t');
  const { lost, reset } = session.reconnected(welcome({ revision: 2000, text: 'fresh' }));
  assert.equal(reset, true);
  assert.deepEqual(lost.map((change) => change.kind), ['text', 'title']);
  assert.equal(session.text, 'fresh');
  assert.equal(session.isSynced, true);
  assert.equal(session.insert(0, 'a')?.id, 2, 'request ids are never reused');
});

test('presence and leave keep the list of other users', () => {
  const user = { client_id: 'c2', name: 'Ada', color: '#e11d48', cursor: { line: 0, column: 1 }, idle: false };
  const session = new Session(welcome({ users: [user] }));
  session.receive({ type: 'presence', ...user, client_id: 'c3' });
  session.receive({ type: 'presence', ...user, client_id: 'c1' });
  assert.deepEqual([...session.users.keys()], ['c2', 'c3'], 'never oneself');
  session.receive({ type: 'leave', client_id: 'c2' });
  assert.deepEqual([...session.users.keys()], ['c3']);
});

test('a long insert goes out in pieces of MAX_INSERT_CHARS code points, never splitting a pair', () => {
  const session = new Session(welcome({ text: '[]', revision: 0 }));
  // Emoji make code points and UTF-16 units differ: the cut counts code points.
  const text = 'é😀x'.repeat(50_000);
  /** @type {any} */
  let message = session.insert(1, text);
  const pieces = [];
  let revision = 0;
  while (message) {
    assert.equal(message.type, 'insert');
    assert.equal(message.revision, revision);
    pieces.push(message.text);
    revision++;
    message = session.receive({ type: 'ack', id: message.id, revision }).send;
  }
  assert.deepEqual(pieces.map((piece) => [...piece].length), [MAX_INSERT_CHARS, MAX_INSERT_CHARS, 150_000 - 2 * MAX_INSERT_CHARS]);
  assert.equal(pieces.join(''), text);
  assert.ok(pieces.every((piece) => !/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(piece)), 'no piece starts or ends inside a pair');
  assert.equal(session.text, `[${text}]`);
  assert.equal(session.isSynced, true);
});

test('a change refused as too fast stays in flight and goes out again, past a remote edit', () => {
  const session = new Session(welcome());
  session.insert(4, '🚀'); // id 1, in flight
  session.insert(5, '!'); // buffered behind it
  const refused = session.receive({ type: 'error', id: 1, code: 'rate_limited', message: 'slow down' });
  assert.deepEqual([refused.retry, refused.send, refused.refused], [true, null, null]);
  assert.equal(session.isSynced, false);
  // Someone else's insert comes in meanwhile: the resend is against the new revision.
  session.receive({ type: 'insert', client_id: 'c2', revision: 13, index: 0, text: '>' });
  assert.deepEqual(session.resend(), { type: 'insert', id: 1, revision: 13, index: 5, text: '🚀' });
  assert.deepEqual(session.receive({ type: 'ack', id: 1, revision: 14 }).send, {
    type: 'insert', id: 2, revision: 14, index: 6, text: '!',
  });
  assert.equal(session.text, '>ABCD🚀!');
});
