// The client's half of the protocol as a state machine, without IO: a port of the reference
// ThinClient (crates/protocol/src/client.rs) and of docs/protocol.md's client algorithm.
//
// It keeps the text, title and counters as the server last confirmed them plus its own
// unacknowledged changes. At most one change is in flight; later ones wait in a buffer, where
// runs of typing or deleting merge. Every incoming change is transformed against the in-flight
// change and the buffer before it is applied. Positions here count code points, as on the wire;
// TandemClient converts from UTF-16 at the edge.

import { delta, fits, transform } from './ot.js';
import { applyEdit, codePointLength, toUtf16 } from './text.js';

/**
 * The longest insert, in code points, sent as one message; longer ones go out in pieces. Even
 * at six bytes a code point (JSON's `\u` escapes) a piece stays well under the server's default
 * message limit of 1 MiB. The same as the Rust client's `MAX_INSERT_CHARS`.
 */
export const MAX_INSERT_CHARS = 1 << 16;

/** @typedef {import('./ot.js').Edit} Edit */

/**
 * A local change not yet acknowledged.
 * @typedef {{kind: 'text', edits: Edit[]}
 *   | {kind: 'title', title: string}
 *   | {kind: 'counter', name: string, amount: number}} Change
 */

/**
 * A user as the wire shows them.
 * @typedef {{client_id: string, name: string | null, color: string | null,
 *   cursor: {line: number, column: number}, idle: boolean}} UserView
 */

/**
 * What a remote text change did to the local text, in UTF-16 units of the text just before it,
 * and as the code point edit it was.
 * @typedef {{index: number, deleted: number, inserted: string, clientId: string, edit: Edit}} TextChange
 */

/**
 * What taking in one server message did.
 * @typedef {object} Received
 * @property {object | null} send the next message to send, if one is due
 * @property {TextChange[]} changes what remote edits did to the local text, in order
 * @property {{id: unknown, code: string, message: string} | null} refused a refusal that changed
 *   nothing locally but the dropped title or counter change (if it was the one in flight)
 * @property {boolean} retry the change in flight was refused for now (`rate_limited`: sent too fast;
 *   `unavailable`: the server could not store it yet):
 *   it stays in flight, to go out again after a pause through `resend()`
 */

/** Why the session cannot go on as it is. */
export class SessionError extends Error {
  /**
   * @param {'not_welcome' | 'desynced' | 'diverged' | 'unexpected_ack'} code
   * @param {string} message
   * @param {Change} [change] the refused change, for `desynced`
   * @param {{code: string, message: string}} [refusal] the server's error, for `desynced`
   */
  constructor(code, message, change, refusal) {
    super(message);
    this.name = 'SessionError';
    /** `desynced`, `diverged` and `unexpected_ack` mean: reconnect for a fresh welcome. */
    this.code = code;
    this.change = change;
    this.refusal = refusal;
  }
}

export class Session {
  /**
   * Starts from the server's welcome.
   * @param {any} welcome
   */
  constructor(welcome) {
    if (welcome?.type !== 'welcome') {
      throw new SessionError('not_welcome', 'the first message must be a welcome');
    }
    /** @type {string} */
    this.clientId = welcome.client_id;
    /** @type {string} */
    this.doc = welcome.doc;
    /** The last revision received (as a change or an ack). @type {number} */
    this.revision = welcome.revision;
    /** The local text: the server's at `revision`, with the local changes applied. */
    this.text = /** @type {string} */ (welcome.text);
    /** The title as the server confirmed it. */
    this.confirmedTitle = /** @type {string} */ (welcome.title);
    /** Counters as the server confirmed them. @type {Map<string, number>} */
    this.counters = new Map(Object.entries(welcome.counters ?? {}));
    /** The other users, by client id. @type {Map<string, UserView>} */
    this.users = new Map((welcome.users ?? []).map((/** @type {UserView} */ u) => [u.client_id, u]));
    /** @type {{id: number, change: Change} | null} */
    this.inFlight = null;
    /** @type {Change[]} */
    this.buffer = [];
    this.nextId = 1;
    /** Set when a text change was refused: the local text has diverged from the server's. */
    this.desynced = false;
    /** After a resumed reconnect, the revision the missed changes go up to. @type {number | null} */
    this.catchingUp = null;
  }

  /** The title, showing the latest local change until the server has it. */
  get title() {
    const pending = this.pending();
    for (let i = pending.length - 1; i >= 0; i--) {
      const change = pending[i];
      if (change.kind === 'title') return change.title;
    }
    return this.confirmedTitle;
  }

  /**
   * A counter's value, with the local increments not yet acknowledged.
   * @param {string} name
   */
  counter(name) {
    let value = this.counters.get(name) ?? 0;
    for (const change of this.pending()) {
      if (change.kind === 'counter' && change.name === name) value += change.amount;
    }
    return value;
  }

  /** Whether every local change has been acknowledged. */
  get isSynced() {
    return this.inFlight === null && this.buffer.length === 0;
  }

  /** The changes not yet acknowledged: the one in flight, then the buffer. */
  pending() {
    return this.inFlight ? [this.inFlight.change, ...this.buffer] : this.buffer.slice();
  }

  /**
   * Inserts `text` at code point `index` locally; returns the message to send now, if any.
   * @param {number} index
   * @param {string} text
   */
  insert(index, text) {
    if (typeof text !== 'string') throw new TypeError('the text to insert must be a string');
    const length = codePointLength(this.text);
    if (!Number.isInteger(index) || index < 0 || index > length) {
      throw new RangeError(`${index}..${index} is outside the local text (length ${length})`);
    }
    if (text === '') return null;
    /** @type {Edit} */
    const edit = { type: 'insert', index, text };
    this.text = applyEdit(this.text, edit).text;
    return this.queue({ kind: 'text', edits: [edit] });
  }

  /**
   * Deletes `length` code points from `index` locally; returns the message to send now, if any.
   * @param {number} index
   * @param {number} length
   */
  delete(index, length) {
    const size = codePointLength(this.text);
    if (!Number.isInteger(index) || !Number.isInteger(length) || index < 0 || length < 0 || index + length > size) {
      throw new RangeError(`${index}..${index + length} is outside the local text (length ${size})`);
    }
    if (length === 0) return null;
    /** @type {Edit} */
    const edit = { type: 'delete', index, length };
    this.text = applyEdit(this.text, edit).text;
    return this.queue({ kind: 'text', edits: [edit] });
  }

  /**
   * Sets the title locally; returns the message to send now, if any.
   * @param {string} title
   */
  setTitle(title) {
    if (typeof title !== 'string') throw new TypeError('the title must be a string');
    return this.queue({ kind: 'title', title });
  }

  /**
   * Adds `amount` to a counter locally; returns the message to send now, if any.
   * @param {string} name
   * @param {number} amount
   */
  incrementCounter(name, amount) {
    return this.queue({ kind: 'counter', name, amount });
  }

  /**
   * Takes in one server message.
   * @param {any} message
   * @returns {Received}
   * @throws {SessionError} when the session cannot go on: reconnect for a fresh welcome
   */
  receive(message) {
    /** @type {Received} */
    const received = { send: null, changes: [], refused: null, retry: false };
    received.send = this.receiveOne(message, received);
    if (received.send === null) received.send = this.caughtUp();
    return received;
  }

  /**
   * @param {any} message
   * @param {Received} received
   * @returns {object | null}
   */
  receiveOne(message, received) {
    switch (message?.type) {
      case 'ack': {
        const inFlight = this.inFlight;
        if (inFlight === null || message.id !== inFlight.id) {
          throw new SessionError(
            'unexpected_ack',
            `an ack arrived for ${JSON.stringify(message.id)}, but ${inFlight?.id ?? 'nothing'} is in flight`,
          );
        }
        this.inFlight = null;
        const change = inFlight.change;
        if (change.kind === 'title') {
          this.confirmedTitle = change.title;
        } else if (change.kind === 'counter') {
          const confirmed = this.counters.get(change.name) ?? 0;
          this.counters.set(change.name, typeof message.value === 'number' ? message.value : confirmed + change.amount);
        }
        this.revision = message.revision;
        return this.sendNext();
      }
      case 'error': {
        const refusal = { id: message.id, code: message.code, message: message.message };
        const inFlight = this.inFlight;
        if (inFlight !== null && message.id === inFlight.id && (message.code === 'rate_limited' || message.code === 'unavailable')) {
          // Sent too fast: the server changed nothing, and the change goes out again later.
          received.retry = true;
          return null;
        }
        if (inFlight !== null && message.id === inFlight.id) {
          this.inFlight = null;
          if (inFlight.change.kind === 'text') {
            this.desynced = true;
            throw new SessionError(
              'desynced',
              `the server refused text change ${inFlight.id} (${message.code}: ${message.message}); reconnect to resynchronise`,
              inFlight.change,
              refusal,
            );
          }
          // A refused title or counter change is dropped; what waited behind it goes out.
          received.refused = refusal;
          return this.sendNext();
        }
        received.refused = refusal;
        return null;
      }
      case 'insert':
        this.remoteEdit({ type: 'insert', index: message.index, text: message.text }, message.client_id, received);
        this.revision = message.revision;
        return null;
      case 'delete':
        this.remoteEdit({ type: 'delete', index: message.index, length: message.length }, message.client_id, received);
        this.revision = message.revision;
        return null;
      case 'set_title':
        this.confirmedTitle = message.title;
        this.revision = message.revision;
        return null;
      case 'increment_counter':
        this.counters.set(message.name, message.value);
        this.revision = message.revision;
        return null;
      case 'presence':
        if (message.client_id !== this.clientId) {
          const { type: _, ...user } = message;
          this.users.set(message.client_id, /** @type {UserView} */ (user));
        }
        return null;
      case 'leave':
        this.users.delete(message.client_id);
        return null;
      default:
        // welcome, resumed and pong change nothing here.
        return null;
    }
  }

  /**
   * Transforms an incoming edit past the local changes and applies it.
   * @param {Edit} edit
   * @param {string} author
   * @param {Received} received
   */
  remoteEdit(edit, author, received) {
    let local = 0;
    for (const change of this.pending()) {
      if (change.kind === 'text') for (const e of change.edits) local += delta(e);
    }
    const serverLength = Math.max(0, codePointLength(this.text) - local);
    if (!validEdit(edit) || !fits(edit, serverLength)) {
      throw new SessionError('diverged', 'a change from the server does not fit the local text');
    }
    let theirs = [edit];
    const changes = this.inFlight ? [this.inFlight.change, ...this.buffer] : this.buffer;
    for (const change of changes) {
      if (change.kind === 'text') {
        const [ours, after] = transform(change.edits, theirs);
        change.edits = ours;
        theirs = after;
      }
    }
    for (const e of theirs) {
      if (!fits(e, codePointLength(this.text))) {
        throw new SessionError('diverged', 'a change from the server does not fit the local text');
      }
      const applied = applyEdit(this.text, e);
      this.text = applied.text;
      received.changes.push({
        index: applied.index,
        deleted: applied.deleted,
        inserted: applied.inserted,
        clientId: author,
        edit: e,
      });
    }
  }

  /**
   * Buffers a local change, merging it into the last one where it continues it, and sends it
   * if nothing is in flight.
   * @param {Change} change
   */
  queue(change) {
    const last = this.buffer[this.buffer.length - 1];
    if (last?.kind === 'text' && change.kind === 'text' && last.edits.length === 1 && change.edits.length === 1) {
      const merged = merge(last.edits[0], change.edits[0]);
      if (merged) {
        last.edits[0] = merged;
        return this.sendNext();
      }
    }
    this.buffer.push(change);
    return this.sendNext();
  }

  /** The next message to send, if one is due (after a refusal, what waited behind it). */
  pollSend() {
    return this.sendNext();
  }

  /** @returns {object | null} */
  sendNext() {
    // A desynced session sends nothing: its edits stay local, to be reported as lost after the
    // reconnect's welcome.
    while (this.inFlight === null && this.catchingUp === null && !this.desynced && this.buffer.length > 0) {
      const change = /** @type {Change} */ (this.buffer.shift());
      const id = this.nextId++;
      const message = this.putInFlight(id, change);
      if (message) return message;
    }
    return null;
  }

  /**
   * Makes `change` the one in flight under request `id` and returns its message; null if
   * concurrent edits cancelled it. A text change split by a concurrent edit goes out one edit
   * at a time.
   * @param {number} id
   * @param {Change} change
   * @returns {object | null}
   */
  putInFlight(id, change) {
    let message;
    if (change.kind === 'text') {
      if (change.edits.length > 1) {
        this.buffer.unshift({ kind: 'text', edits: change.edits.slice(1) });
        change.edits = change.edits.slice(0, 1);
      }
      const edit = change.edits[0];
      if (edit === undefined) return null;
      // A long insert (a big paste) goes out in pieces, each well under the server's limit.
      if (edit.type === 'insert' && edit.text.length > MAX_INSERT_CHARS && codePointLength(edit.text) > MAX_INSERT_CHARS) {
        const cut = toUtf16(edit.text, MAX_INSERT_CHARS);
        this.buffer.unshift({ kind: 'text', edits: [{ type: 'insert', index: edit.index + MAX_INSERT_CHARS, text: edit.text.slice(cut) }] });
        change.edits = [{ type: 'insert', index: edit.index, text: edit.text.slice(0, cut) }];
        return this.putInFlight(id, change);
      }
      message = edit.type === 'insert'
        ? { type: 'insert', id, revision: this.revision, index: edit.index, text: edit.text }
        : { type: 'delete', id, revision: this.revision, index: edit.index, length: edit.length };
    } else if (change.kind === 'title') {
      message = { type: 'set_title', id, title: change.title };
    } else {
      message = { type: 'increment_counter', id, name: change.name, amount: change.amount };
    }
    this.inFlight = { id, change };
    return message;
  }

  /**
   * Takes the first message after a reconnect that asked to resume from `revision`.
   *
   * After `resumed`, the missed changes follow (the client's own as acks); once they are in,
   * the change still in flight is sent again with the same request id. After a full `welcome`
   * the session starts again from it, and its unacknowledged changes are returned as lost.
   * @param {any} first
   * @returns {{send: object | null, lost: Change[], reset: boolean}}
   */
  reconnected(first) {
    if (first?.type === 'resumed') {
      if (first.revision !== this.revision) {
        throw new SessionError('diverged', `resumed at ${first.revision}, but the client is at ${this.revision}`);
      }
      this.users = new Map((first.users ?? []).map((/** @type {UserView} */ u) => [u.client_id, u]));
      this.catchingUp = first.head;
      return { send: this.caughtUp(), lost: [], reset: false };
    }
    if (first?.type === 'welcome') {
      const lost = this.pending();
      const nextId = this.nextId;
      Object.assign(this, new Session(first));
      this.nextId = nextId;
      return { send: null, lost, reset: true };
    }
    throw new SessionError('not_welcome', 'the first message must be a welcome or resumed');
  }

  /**
   * The change in flight once more, against the current revision (remote changes since have
   * been transformed into it), after the server refused it as sent too fast.
   * @returns {object | null}
   */
  resend() {
    if (this.catchingUp !== null || this.desynced) return null;
    const inFlight = this.inFlight;
    if (inFlight === null) return this.sendNext();
    this.inFlight = null;
    return this.putInFlight(inFlight.id, inFlight.change) ?? this.sendNext();
  }

  /**
   * Ends the catch-up once the client is at the revision the server had when it resumed: the
   * change still in flight was not applied, so it goes out again.
   * @returns {object | null}
   */
  caughtUp() {
    const head = this.catchingUp;
    if (head === null || this.revision < head) return null;
    this.catchingUp = null;
    return this.resend();
  }
}

/**
 * Whether a value from the network is an edit with sane fields.
 * @param {Edit} edit
 */
function validEdit(edit) {
  if (!Number.isSafeInteger(edit.index) || edit.index < 0) return false;
  if (edit.type === 'insert') return typeof edit.text === 'string';
  return Number.isSafeInteger(edit.length) && edit.length >= 0;
}

/**
 * One edit that does what `previous` then `next` do, when `next` continues `previous`: typing
 * on at the end of an insert, or deleting on either side of a delete.
 * @param {Edit} previous
 * @param {Edit} next
 * @returns {Edit | null}
 */
export function merge(previous, next) {
  if (previous.type === 'insert' && next.type === 'insert' && next.index === previous.index + codePointLength(previous.text)) {
    return { type: 'insert', index: previous.index, text: previous.text + next.text };
  }
  if (previous.type === 'delete' && next.type === 'delete' && (next.index === previous.index || next.index + next.length === previous.index)) {
    return { type: 'delete', index: Math.min(previous.index, next.index), length: previous.length + next.length };
  }
  return null;
}
