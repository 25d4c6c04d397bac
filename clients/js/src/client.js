// TandemClient: one document on a Tandem server, kept in sync over a WebSocket.
//
// It wraps the protocol state machine (session.js) with the connection: it opens the socket,
// reconnects by itself with capped exponential backoff and jitter, resumes where it left off
// (`?client=ID&since=REV`), keeps edits made while offline and sends them after the resume,
// notices a dead connection with pings, and tells the application what happened through
// events. Positions at this API are JavaScript string indexes (UTF-16 units), as editors use;
// they are converted to the wire's code points here and nowhere else.

import { Session, SessionError } from './session.js';
import { codePointLength, fromLineColumn, isBoundary, lineColumn, toCodePoints, toUtf16, wellFormed } from './text.js';

/**
 * @typedef {'connecting' | 'online' | 'offline' | 'resyncing'} Status
 * `connecting`: opening a connection (the first, or again after a drop);
 * `resyncing`: connected, taking in the changes missed while away (or, after the server
 * refused a text change, fetching a fresh copy);
 * `online`: connected and up to date; edits go out as they are made;
 * `offline`: no connection; edits are kept and a reconnect is scheduled.
 */

/**
 * Another user in the document.
 * @typedef {object} User
 * @property {string} clientId
 * @property {string | null} name
 * @property {string | null} color
 * @property {boolean} idle
 * @property {{line: number, column: number}} cursor as the user last reported it (code points)
 * @property {number} index where their caret is in the local text (UTF-16), moved with edits
 */

/**
 * A remote change to the text, in UTF-16 units of the local text just before it: `deleted`
 * units at `index` were removed and `inserted` put in their place. `edit` is the same change
 * in code points, as ot.js and undo.js take it.
 * @typedef {import('./session.js').TextChange} TextChange
 */

/**
 * A local change the server never applied: lost after a reconnect that could not resume, or
 * refused.
 * @typedef {{type: 'text', edits: import('./ot.js').Edit[]}
 *   | {type: 'title', title: string}
 *   | {type: 'counter', name: string, amount: number}} LostChange
 */

/**
 * @typedef {object} Events
 * @property {Status} status the connection status changed
 * @property {{text: string}} reset the whole text was replaced (the first welcome, or a fresh
 *   one after a reconnect that could not resume): redraw from `client.text`
 * @property {TextChange} change another user changed the text
 * @property {User[]} users someone joined, left, moved their caret, renamed or went idle
 * @property {number} revision the client reached a new revision (`client.revision`): an ack
 *   of its own change or someone else's change came in
 * @property {string} title the title changed (`client.title`)
 * @property {{name: string, value: number}} counter a counter changed (`client.counter(name)`)
 * @property {{changes: LostChange[], text: string}} lost local changes that can no longer be
 *   applied; `text` is the local text as it was just before they were dropped
 * @property {{code: string, message: string}} error the server refused a message, or the
 *   connection failed in a way worth logging
 */

/**
 * @typedef {object} Options
 * @property {string} doc the document id: 1 to 128 of `A-Z a-z 0-9 . _ -`
 * @property {string} [url] the server, as `http(s)://` or `ws(s)://` host (default: the page's
 *   origin in a browser)
 * @property {any} [WebSocket] a WebSocket constructor (default: the global one; in Node 20 pass
 *   the `ws` package's)
 * @property {string} [clientId] an identity to take (default: the server gives one)
 * @property {string} [name] the display name to show others
 * @property {string} [color] the colour to show others, such as `#e11d48`
 * @property {number} [minDelay] the first reconnect delay in ms (default 250)
 * @property {number} [maxDelay] the longest reconnect delay in ms (default 10000)
 * @property {number} [pingInterval] how often to check a quiet connection, in ms (default 10000)
 * @property {number} [pingTimeout] how long a ping may go unanswered before the connection is
 *   taken for dead, in ms (default 5000)
 * @property {string | (() => string | Promise<string>)} [token] a token from `tandem token`,
 *   for a server with a secret (sent as `?token=`, since browsers cannot set headers on a
 *   WebSocket); or a function that gets one, called before every connection: the server closes
 *   a connection when its token expires, and the reconnect then asks for a fresh one
 * @property {number} [connectTimeout] how long a connection may take to open and bring its first
 *   message before it is given up and tried again, in ms (default 10000)
 * @property {number} [cursorInterval] the least time between two caret updates sent, in ms
 *   (default 50)
 * @property {() => number} [random] a random number in [0, 1) for the backoff's jitter
 */

/**
 * Whether `id` can name a document: 1 to 128 of `A-Z a-z 0-9 . _ -`, not only dots (`.` and
 * `..` would be read as path segments).
 * @param {unknown} id
 * @returns {id is string}
 */
export function isDocumentId(id) {
  return typeof id === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(id) && /[^.]/.test(id);
}

export class TandemClient {
  /** @param {Options} options */
  constructor(options) {
    if (!isDocumentId(options?.doc)) {
      throw new TypeError('doc must be 1 to 128 of A-Z a-z 0-9 . _ -, not only dots');
    }
    this.options = {
      minDelay: 250,
      maxDelay: 10_000,
      pingInterval: 10_000,
      pingTimeout: 5_000,
      connectTimeout: 10_000,
      cursorInterval: 50,
      random: Math.random,
      ...options,
    };
    this.doc = options.doc;
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.WebSocket !== 'function') {
      throw new TypeError('no WebSocket: pass one as the WebSocket option (in Node, the ws package)');
    }
    const base = options.url ?? globalThis.location?.origin;
    if (!base) throw new TypeError('url is needed outside a browser');
    this.base = base.replace(/^http/, 'ws').replace(/\/+$/, '');
    /** @type {Session | null} */
    this.session = null;
    /** @type {Status} */
    this.currentStatus = 'offline';
    /** @type {any} */
    this.socket = null;
    /** Whether the first message on the current socket has been taken in. */
    this.live = false;
    /** After a refused text change: the next connection starts afresh. */
    this.fresh = false;
    this.closed = true;
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */ this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */ this.pingTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */ this.pongTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */ this.connectTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */ this.cursorTimer = undefined;
    /** After `rate_limited`: when the change in flight goes out again. */
    /** @type {ReturnType<typeof setTimeout> | undefined} */ this.resendTimer = undefined;
    /** How many resends in a row the server has refused as too fast. */
    this.rateLimited = 0;
    /** Counts opens (and drops), so that a token arriving late opens nothing. */
    this.openings = 0;
    /** Version requests waiting for their answer, by request id. @type {Map<string, {resolve: (value: any) => void, reject: (error: Error) => void}>} */
    this.versionRequests = new Map();
    this.versionCount = 0;
    /** @type {{name?: string, color?: string}} */
    this.fields = {};
    if (options.name !== undefined) this.fields.name = options.name;
    if (options.color !== undefined) this.fields.color = options.color;
    /** The caret to report: line and column in code points. @type {{line: number, column: number} | null} */
    this.cursor = null;
    /** @type {string | null} */ this.sentCursor = null;
    this.lastCursorSent = -Infinity;
    /** Where each other user's caret is in the local text (UTF-16). @type {Map<string, number>} */
    this.carets = new Map();
    /** Changes the server refused, reported as lost at the next fresh start. @type {LostChange[]} */
    this.refused = [];
    /** @type {Map<string, Set<(value: any) => void>>} */
    this.listeners = new Map();
    /** @type {Array<{resolve: () => void, reject: (error: Error) => void}>} */
    this.syncWaiters = [];
    /** @type {Array<{resolve: () => void, reject: (error: Error) => void}>} */
    this.readyWaiters = [];
    this.onOnline = () => {
      if (!this.closed && this.currentStatus === 'offline') this.open();
    };
  }

  // ---- State ----

  /** @returns {Status} */
  get status() {
    return this.currentStatus;
  }

  /** Whether the first welcome has arrived, so that the text can be read and edited. */
  get ready() {
    return this.session !== null;
  }

  /** The local text, with the local changes not yet acknowledged. */
  get text() {
    return this.session?.text ?? '';
  }

  /** The last revision received from the server. */
  get revision() {
    return this.session?.revision ?? 0;
  }

  /** @returns {string | null} */
  get clientId() {
    return this.session?.clientId ?? this.options.clientId ?? null;
  }

  /** The title, showing the latest local change until the server has it. */
  get title() {
    return this.session?.title ?? '';
  }

  /**
   * A counter's value, with the local increments not yet acknowledged.
   * @param {string} name
   */
  counter(name) {
    return this.session?.counter(name) ?? 0;
  }

  /** Whether every local change has been acknowledged. */
  get isSynced() {
    return this.session?.isSynced ?? false;
  }

  /**
   * The other users of the document, ordered by client id.
   * @returns {User[]}
   */
  get users() {
    if (!this.session) return [];
    return [...this.session.users.values()]
      .map((user) => ({
        clientId: user.client_id,
        name: user.name ?? null,
        color: user.color ?? null,
        idle: user.idle,
        cursor: user.cursor,
        index: this.carets.get(user.client_id) ?? 0,
      }))
      .sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
  }

  // ---- Events ----

  /**
   * Calls `listener` on each event of this type; returns a function that stops it.
   * @template {keyof Events} K
   * @param {K} type
   * @param {(value: Events[K]) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * @template {keyof Events} K
   * @param {K} type
   * @param {Events[K]} value
   */
  emit(type, value) {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        listener(value);
      } catch (error) {
        // A failing listener must not break the protocol state; report it on its own.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /** Resolves once the first welcome has arrived. @returns {Promise<void>} */
  whenReady() {
    if (this.session) return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Resolves once every local change has been acknowledged. @returns {Promise<void>} */
  whenSynced() {
    if (this.session?.isSynced) return Promise.resolve();
    return new Promise((resolve, reject) => this.syncWaiters.push({ resolve, reject }));
  }

  // ---- Connection ----

  /** Starts connecting, and keeps the connection up until `close()`. */
  connect() {
    if (!this.closed) return this;
    this.closed = false;
    globalThis.addEventListener?.('online', this.onOnline);
    this.open();
    return this;
  }

  /** Closes the connection for good; local changes not yet acknowledged stay unsent. */
  close() {
    this.closed = true;
    globalThis.removeEventListener?.('online', this.onOnline);
    clearTimeout(this.retryTimer);
    clearTimeout(this.cursorTimer);
    this.cursorTimer = undefined;
    this.drop();
    this.setStatus('offline');
    for (const waiter of [...this.readyWaiters.splice(0), ...this.syncWaiters.splice(0)]) {
      waiter.reject(new Error('the client was closed'));
    }
  }

  open() {
    clearTimeout(this.retryTimer);
    this.drop();
    this.setStatus(this.fresh ? 'resyncing' : 'connecting');
    const token = this.options.token;
    if (typeof token !== 'function') {
      this.openSocket(token);
      return;
    }
    // A later open (or a close) while the token is on its way makes this one void.
    const opening = ++this.openings;
    Promise.resolve()
      .then(() => token())
      .then(
        (value) => {
          if (opening === this.openings && !this.closed) this.openSocket(value);
        },
        (error) => {
          if (opening !== this.openings || this.closed) return;
          this.emit('error', { code: 'token_failed', message: String(error) });
          this.scheduleRetry();
        },
      );
  }

  /** @param {string | undefined} token */
  openSocket(token) {
    const session = this.session;
    const query = new URLSearchParams();
    const id = this.clientId;
    if (id !== null) query.set('client', id);
    if (session && !this.fresh) query.set('since', String(session.revision));
    if (token) query.set('token', token);
    const search = query.toString();
    const url = `${this.base}/ws/${this.doc}${search ? `?${search}` : ''}`;
    let socket;
    try {
      socket = new this.WebSocket(url);
    } catch (error) {
      this.emit('error', { code: 'connect_failed', message: String(error) });
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    this.live = false;
    // A socket that does not open, or sends no first message, in time is given up.
    this.connectTimer = setTimeout(() => {
      if (this.socket === socket && !this.live) this.lostConnection();
    }, this.options.connectTimeout);
    socket.onmessage = (/** @type {{data: unknown}} */ event) => {
      if (this.socket === socket) this.onFrame(event.data);
    };
    socket.onclose = () => {
      if (this.socket === socket) this.lostConnection();
    };
    socket.onerror = () => {};
  }

  /** Forgets the current socket (closing it) and its timers. */
  drop() {
    this.openings++;
    for (const request of this.versionRequests.values()) {
      request.reject(Object.assign(new Error('the connection dropped'), { code: 'offline' }));
    }
    this.versionRequests.clear();
    clearInterval(this.pingTimer);
    clearTimeout(this.resendTimer);
    this.resendTimer = undefined;
    clearTimeout(this.pongTimer);
    clearTimeout(this.connectTimer);
    this.pongTimer = undefined;
    const socket = this.socket;
    this.socket = null;
    this.live = false;
    if (socket) {
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = () => {};
      try {
        socket.close();
      } catch {
        // Closing a socket that never opened may throw; it is gone either way.
      }
    }
  }

  lostConnection() {
    this.drop();
    if (this.closed) return;
    this.setStatus('offline');
    this.scheduleRetry();
  }

  scheduleRetry() {
    if (this.closed) return;
    this.setStatus('offline');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), this.nextDelay());
  }

  /** The next reconnect delay: capped exponential backoff with equal jitter (at least half the
   * ceiling), so that a crowd of clients spreads out but still backs off. */
  nextDelay() {
    const { minDelay, maxDelay, random } = this.options;
    const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return ceiling / 2 + random() * (ceiling / 2);
  }

  /** Checks the connection every `pingInterval`; one silent for `pingTimeout` after a ping is dead. */
  startPings() {
    const { pingInterval, pingTimeout } = this.options;
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      this.send({ type: 'ping' });
      // A pong timer already running keeps running: a later ping must not postpone it.
      this.pongTimer ??= setTimeout(() => this.lostConnection(), pingTimeout);
    }, pingInterval);
  }

  /** @param {object | null} message */
  send(message) {
    if (message === null || !this.live || this.socket?.readyState !== 1) return;
    try {
      this.socket.send(JSON.stringify(message));
    } catch {
      // The socket is failing; its close event brings the reconnect, and the session resends.
    }
  }

  /** @param {Status} status */
  setStatus(status) {
    if (this.currentStatus === status) return;
    this.currentStatus = status;
    this.emit('status', status);
  }

  /** @param {unknown} data */
  onFrame(data) {
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
    let message;
    try {
      message = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      message = undefined;
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      this.emit('error', { code: 'invalid_json', message: 'the server sent a frame that is not a JSON object' });
      return;
    }
    try {
      if (this.live) {
        this.onMessage(message);
      } else {
        this.onFirst(message);
      }
    } catch (error) {
      // A message the session cannot take (or a bug it exposes): start again from a welcome,
      // with the local changes reported as lost, rather than go on from a state in doubt.
      const failure = error instanceof SessionError ? error : new SessionError('diverged', String(error));
      // A refused change is reported with the server's code (`forbidden`, `too_large`...).
      const reported = failure.refusal ?? failure;
      this.emit('error', { code: reported.code, message: reported.message });
      this.resync(failure);
    }
    this.settle();
  }

  /** The first message on a connection: a welcome, or `resumed` after a reconnect. */
  onFirst(/** @type {any} */ message) {
    const before = this.session;
    if (before === null) {
      this.session = new Session(message);
      this.live = true;
      this.attempt = 0;
      this.carets.clear();
      for (const user of this.session.users.values()) this.placeCaret(user);
      this.startPings();
      this.emit('reset', { text: this.session.text });
      this.emitEverything();
      this.announce();
      for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
      return;
    }
    const textBefore = before.text;
    const { send, lost, reset } = before.reconnected(message);
    this.live = true;
    this.attempt = 0;
    this.fresh = false;
    this.startPings();
    if (reset) {
      this.carets.clear();
      for (const user of before.users.values()) this.placeCaret(user);
      const dropped = [...this.refused, ...lost.map(toLost)];
      this.refused = [];
      this.emit('reset', { text: before.text });
      if (dropped.length > 0) this.emit('lost', { changes: dropped, text: textBefore });
      this.emitEverything();
    } else {
      for (const user of before.users.values()) this.placeCaret(user);
      this.emit('users', this.users);
    }
    this.announce();
    this.send(send);
  }

  /** @param {any} message */
  onMessage(message) {
    // Answers to version requests are the caller's; the session has nothing to do with them.
    if (this.settleVersion(message)) return;
    const session = /** @type {Session} */ (this.session);
    const { title, revision } = session;
    const received = session.receive(message);
    for (const change of received.changes) {
      this.mapCarets(change.index, change.deleted, change.inserted.length, change.clientId);
      this.emit('change', change);
    }
    switch (message.type) {
      case 'presence': {
        const user = session.users.get(message.client_id);
        if (user) this.placeCaret(user);
        this.emit('users', this.users);
        break;
      }
      case 'leave':
        this.carets.delete(message.client_id);
        this.emit('users', this.users);
        break;
      case 'increment_counter':
        this.emit('counter', { name: message.name, value: session.counter(message.name) });
        break;
      case 'ack':
      case 'error':
        // An acked or refused counter change settles its value; a refused title shows the
        // confirmed one again.
        for (const name of session.counters.keys()) this.emit('counter', { name, value: session.counter(name) });
        break;
    }
    if (session.title !== title) this.emit('title', session.title);
    if (session.revision !== revision) this.emit('revision', session.revision);
    if (received.refused) this.emit('error', { code: received.refused.code, message: received.refused.message });
    if (message.type === 'ack') this.rateLimited = 0;
    if (received.retry) this.resendLater();
    this.send(received.send);
  }

  /**
   * After the server refused the change in flight as sent too fast: send it again after a
   * pause that doubles while the refusals go on (from `minDelay` up to `maxDelay`).
   */
  resendLater() {
    const { minDelay, maxDelay } = this.options;
    const delay = Math.min(maxDelay, minDelay * 2 ** Math.min(this.rateLimited, 30));
    this.rateLimited++;
    clearTimeout(this.resendTimer);
    const socket = this.socket;
    this.resendTimer = setTimeout(() => {
      if (this.socket !== socket || !this.live || !this.session) return;
      this.send(this.session.resend());
      this.settle();
    }, delay);
  }

  /**
   * After a refused text change, or a change that does not fit: start again from a welcome,
   * at once the first time and with backoff if that keeps failing.
   * @param {SessionError} error
   */
  resync(error) {
    if (error.change) this.refused.push(toLost(error.change));
    if (this.session) this.session.desynced = true;
    this.fresh = true;
    this.drop();
    if (this.attempt === 0) {
      this.attempt++;
      this.open();
    } else {
      this.setStatus('offline');
      this.retryTimer = setTimeout(() => this.open(), this.nextDelay());
    }
  }

  /** Updates the status and wakes those waiting for the end of a resync or for sync. */
  settle() {
    const session = this.session;
    if (!session || !this.live) return;
    if (session.catchingUp === null && !this.fresh) this.setStatus('online');
    else this.setStatus('resyncing');
    if (session.isSynced && this.currentStatus === 'online') {
      for (const waiter of this.syncWaiters.splice(0)) waiter.resolve();
    }
  }

  /** Tells the server who this user is and where their caret is, after each (re)connect. */
  announce() {
    if (this.fields.name !== undefined || this.fields.color !== undefined) {
      this.send({ type: 'presence_update', ...this.fields });
    }
    this.sentCursor = null;
    this.flushCursor();
  }

  emitEverything() {
    const session = /** @type {Session} */ (this.session);
    this.emit('title', session.title);
    for (const name of session.counters.keys()) this.emit('counter', { name, value: session.counter(name) });
    this.emit('users', this.users);
  }

  /** @param {import('./session.js').UserView} user */
  placeCaret(user) {
    const cursor = user.cursor ?? { line: 0, column: 0 };
    this.carets.set(user.client_id, fromLineColumn(this.text, cursor.line, cursor.column));
  }

  /**
   * Moves the other users' carets with a change of `deleted` units at `index` replaced by
   * `inserted` units. The author's caret goes to the end of what they typed; a caret right at
   * an insert stays before it, as the local caret does.
   * @param {number} index
   * @param {number} deleted
   * @param {number} inserted
   * @param {string | null} author
   */
  mapCarets(index, deleted, inserted, author) {
    for (const [id, caret] of this.carets) {
      let moved = caret;
      if (id === author) moved = index + inserted;
      else if (caret > index + deleted) moved = caret - deleted + inserted;
      else if (caret > index) moved = index;
      this.carets.set(id, moved);
    }
  }

  // ---- Editing (UTF-16 indexes) ----

  /** @returns {Session} */
  editable() {
    if (!this.session) throw new Error('the document has not arrived yet: wait for whenReady()');
    return this.session;
  }

  /**
   * Inserts `text` at UTF-16 index `index` of the local text.
   * @param {number} index
   * @param {string} text
   */
  insert(index, text) {
    this.replace(index, 0, text);
  }

  /**
   * Deletes `length` UTF-16 units from `index` of the local text.
   * @param {number} index
   * @param {number} length
   */
  delete(index, length) {
    this.replace(index, length, '');
  }

  /**
   * Replaces `length` UTF-16 units at `index` of the local text with `text`, as one delete and
   * one insert. Neither end may fall inside a surrogate pair (RangeError); lone surrogates in
   * `text` become U+FFFD.
   * @param {number} index
   * @param {number} length
   * @param {string} text
   */
  replace(index, length, text) {
    if (typeof text !== 'string') throw new TypeError('the text must be a string');
    const session = this.editable();
    const before = session.text;
    const end = index + length;
    if (!Number.isInteger(index) || !Number.isInteger(length) || index < 0 || length < 0 || end > before.length) {
      throw new RangeError(`${index}..${end} is outside the text (length ${before.length})`);
    }
    if (!isBoundary(before, index) || !isBoundary(before, end)) {
      throw new RangeError(`${index}..${end} cuts a surrogate pair`);
    }
    const inserted = wellFormed(text);
    const at = toCodePoints(before, index);
    if (length > 0) {
      this.send(session.delete(at, codePointLength(before.slice(index, end))));
    }
    if (inserted !== '') this.send(session.insert(at, inserted));
    this.mapCarets(index, length, inserted.length, null);
  }

  /**
   * Applies edits in code points (as ot.js makes them) as local changes, in order.
   * @param {import('./ot.js').Edit[]} edits
   */
  applyEdits(edits) {
    const session = this.editable();
    for (const edit of edits) {
      const index = toUtf16(session.text, edit.index);
      if (edit.type === 'insert') {
        this.replace(index, 0, edit.text);
      } else if (edit.type === 'delete') {
        this.replace(index, toUtf16(session.text, edit.length, index) - index, '');
      } else {
        throw new TypeError(`an edit is an insert or a delete, not ${JSON.stringify(/** @type {any} */ (edit).type)}`);
      }
    }
  }

  /**
   * Sets the title.
   * @param {string} title
   */
  setTitle(title) {
    if (typeof title !== 'string') throw new TypeError('the title must be a string');
    const session = this.editable();
    const before = session.title;
    this.send(session.setTitle(wellFormed(title)));
    if (session.title !== before) this.emit('title', session.title);
  }

  /**
   * Adds `amount` (negative to subtract) to the counter `name`.
   * @param {string} name
   * @param {number} [amount]
   */
  increment(name, amount = 1) {
    if (!Number.isSafeInteger(amount)) throw new RangeError('amount must be a safe integer');
    const session = this.editable();
    this.send(session.incrementCounter(name, amount));
    this.emit('counter', { name, value: session.counter(name) });
  }

  /**
   * Saves the revision the document is at as a named version (`label`: 1 to 64 of
   * `A-Z a-z 0-9 . _ -`). Resolves with `{label, revision, created_at}` once it is stored;
   * rejects with the server's `code` (`conflict` if the label exists) or if the connection
   * drops first.
   * @param {string} label
   * @returns {Promise<{label: string, revision: number, created_at: string}>}
   */
  saveVersion(label) {
    return this.versionRequest({ type: 'save_version', label }).then(({ label, revision, created_at }) => ({ label, revision, created_at }));
  }

  /**
   * Turns the text back into that of the version named `label`, as one new change everyone
   * sees (it arrives here as `change` events like anyone's). Resolves with the revision after
   * it; rejects with the server's `code` (`not_found` for an unknown label) or if the
   * connection drops first.
   * @param {string} label
   * @returns {Promise<number>}
   */
  restoreVersion(label) {
    return this.versionRequest({ type: 'restore_version', label }).then((message) => message.revision);
  }

  /**
   * Sends a version request with an id of its own (`version-N`, never a change's), and waits
   * for its answer.
   * @param {{type: 'save_version' | 'restore_version', label: string}} message
   * @returns {Promise<any>}
   */
  versionRequest(message) {
    if (!this.live || !this.socket || !this.session || this.session.desynced) {
      return Promise.reject(Object.assign(new Error('not connected'), { code: 'offline' }));
    }
    const id = `version-${++this.versionCount}`;
    return new Promise((resolve, reject) => {
      this.versionRequests.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ ...message, id }));
    });
  }

  /**
   * Settles the version request `message` answers, if it answers one.
   * @param {any} message
   * @returns {boolean} whether it did
   */
  settleVersion(message) {
    const request = typeof message.id === 'string' ? this.versionRequests.get(message.id) : undefined;
    if (!request) return false;
    if (message.type === 'error') {
      this.versionRequests.delete(message.id);
      request.reject(Object.assign(new Error(message.message), { code: message.code }));
      return true;
    }
    if (message.type === 'version' || message.type === 'restored') {
      this.versionRequests.delete(message.id);
      request.resolve(message);
      return true;
    }
    return false;
  }

  /**
   * Reports where the local caret is (a UTF-16 index of the local text); sent at most every
   * `cursorInterval` ms, the latest position last.
   * @param {number} index
   */
  moveCursor(index) {
    const text = this.text;
    let at = Math.max(0, Math.min(index, text.length));
    if (!isBoundary(text, at)) at--;
    this.cursor = lineColumn(text, toCodePoints(text, at));
    this.flushCursor();
  }

  flushCursor() {
    if (this.cursor === null || !this.live) return;
    const key = `${this.cursor.line}:${this.cursor.column}`;
    if (key === this.sentCursor) return;
    const wait = this.lastCursorSent + this.options.cursorInterval - Date.now();
    if (wait > 0) {
      if (this.cursorTimer === undefined) {
        this.cursorTimer = setTimeout(() => {
          this.cursorTimer = undefined;
          this.flushCursor();
        }, wait);
      }
      return;
    }
    this.lastCursorSent = Date.now();
    this.sentCursor = key;
    this.send({ type: 'cursor_move', ...this.cursor });
  }

  /**
   * Sets the display fields shown to others; absent ones keep their value.
   * @param {{name?: string, color?: string}} fields
   */
  setPresence(fields) {
    /** @type {{name?: string, color?: string}} */
    const update = {};
    if (fields.name !== undefined) update.name = wellFormed(fields.name);
    if (fields.color !== undefined) update.color = wellFormed(fields.color);
    Object.assign(this.fields, update);
    this.send({ type: 'presence_update', ...update });
  }
}

/**
 * @param {import('./session.js').Change} change
 * @returns {LostChange}
 */
function toLost(change) {
  if (change.kind === 'text') return { type: 'text', edits: change.edits.map((edit) => ({ ...edit })) };
  if (change.kind === 'title') return { type: 'title', title: change.title };
  return { type: 'counter', name: change.name, amount: change.amount };
}
