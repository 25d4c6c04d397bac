// The real `tandem` binary for the tests (binary.js, shared with the browser tests), a TCP proxy
// in front of it that can cut every connection or refuse new ones (proxy.js, shared too), and
// clients of it.

import WebSocket from 'ws';

import { TandemClient } from '../../src/client.js';
import { Server as BinaryServer } from './binary.js';

/** Every wait ends well within this; it guards against hangs and synchronises nothing. */
export const PATIENCE = 30_000;

export { BIN } from './binary.js';

/**
 * The binary, with a message rate far above the default: these tests write far faster than
 * people type (a thousand changes in a row, say), and the rate is not theirs to test, unless
 * they give one. The browser tests keep the defaults.
 */
export class Server extends BinaryServer {
  /** @param {{persistent?: boolean, args?: string[]}} [options] */
  constructor(options = {}) {
    const args = options.args ?? [];
    const rate = args.includes('--message-rate') ? [] : ['--message-rate', '1000000', '--message-burst', '1000000'];
    super({ ...options, args: [...rate, ...args] });
  }
}

// The TCP proxy lives apart, so that the browser tests can share it without `ws`.
export { Proxy } from './proxy.js';

/**
 * A client of `doc` at `url`, with short timings for the tests.
 * @param {string} url
 * @param {string} doc
 * @param {Partial<import('../../src/client.js').Options>} [options]
 */
export function client(url, doc, options = {}) {
  return new TandemClient({ url, doc, WebSocket, minDelay: 20, maxDelay: 200, ...options }).connect();
}

/**
 * Resolves once `check()` holds, re-checking whenever one of `clients` reports anything (and
 * every few ms, for state that changes without an event); fails after PATIENCE.
 * @param {() => boolean} check
 * @param {TandemClient[]} [clients]
 * @param {string} [what]
 */
export function until(check, clients = [], what = 'a condition') {
  return new Promise((resolve, reject) => {
    /** @type {Array<() => void>} */
    const stops = [];
    const finish = (/** @type {Error | undefined} */ error) => {
      clearTimeout(timer);
      clearInterval(poll);
      for (const stop of stops) stop();
      if (error) reject(error);
      else resolve(undefined);
    };
    const test = () => {
      try {
        if (check()) finish(undefined);
      } catch (error) {
        finish(/** @type {Error} */ (error));
      }
    };
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}`)), PATIENCE);
    const poll = setInterval(test, 10);
    for (const c of clients) {
      for (const type of /** @type {const} */ (['status', 'change', 'users', 'title', 'counter', 'reset'])) {
        stops.push(c.on(type, test));
      }
    }
    test();
  });
}

/**
 * Resolves once every client is online, synced and at the server's revision, with its text.
 * @param {Server} server
 * @param {string} doc
 * @param {TandemClient[]} clients
 */
export async function converged(server, doc, clients) {
  for (;;) {
    await until(() => clients.every((c) => c.status === 'online' && c.isSynced), clients, 'every client online and synced');
    const document = await server.document(doc);
    const revisions = new Set(clients.map((c) => c.revision));
    if (revisions.size === 1 && revisions.has(document.revision)) return document;
    // Some client has not heard the latest change yet: wait for it to arrive.
    await until(() => clients.every((c) => c.revision >= document.revision), clients, `revision ${document.revision} everywhere`);
  }
}
