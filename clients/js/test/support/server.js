// The real `tandem` binary for the tests, on a free port, and a TCP proxy in front of it that
// can cut every connection (a real drop: both ends see the TCP connection end) or refuse new
// ones (offline).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import WebSocket from 'ws';

import { TandemClient } from '../../src/client.js';

/** Every wait ends well within this; it guards against hangs and synchronises nothing. */
export const PATIENCE = 30_000;

export const BIN = process.env.TANDEM_BIN ?? fileURLToPath(new URL('../../../../target/debug/tandem', import.meta.url));

/**
 * A running server. `restart()` stops it (SIGTERM, or SIGKILL with `{kill: true}`) and starts
 * it again on the same port and data.
 */
export class Server {
  /** @param {{persistent?: boolean, args?: string[]}} [options] */
  static async start(options = {}) {
    const server = new Server(options);
    await server.spawn('127.0.0.1:0');
    return server;
  }

  /** @param {{persistent?: boolean, args?: string[]}} options */
  constructor(options) {
    this.dataDir = options.persistent ? mkdtempSync(join(tmpdir(), 'tandem-js-')) : null;
    this.args = options.args ?? [];
    /** @type {import('node:child_process').ChildProcess | null} */
    this.child = null;
    this.port = 0;
    this.log = '';
  }

  /** @param {string} bind */
  async spawn(bind) {
    const storage = this.dataDir ? ['--data-dir', this.dataDir] : ['--in-memory'];
    // These tests write far faster than people type (a thousand changes in a row, say): the
    // message rate is not theirs to test. The browser tests keep the defaults.
    const fast = ['--message-rate', '1000000', '--message-burst', '1000000'];
    const child = spawn(BIN, ['--bind', bind, ...storage, ...fast, ...this.args], {
      env: { ...process.env, NO_COLOR: '1', RUST_LOG: 'warn,tandem_server=info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start:\n${this.log}`)), PATIENCE);
      /** @param {Buffer} chunk */
      const read = (chunk) => {
        // eslint-disable-next-line no-control-regex
        this.log += chunk.toString().replace(/\x1b\[[0-9;]*m/g, '');
        const match = /listening on [0-9.]+:(\d+)/.exec(this.log);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      };
      child.stdout?.on('data', read);
      child.stderr?.on('data', read);
      child.on('error', (error) => reject(new Error(`cannot run ${BIN} (build it with cargo build -p tandem-server, or set TANDEM_BIN): ${error.message}`)));
      child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${this.log}`)));
    });
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** @param {{kill?: boolean}} [how] */
  async stop(how = {}) {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(how.kill ? 'SIGKILL' : 'SIGTERM');
    await exited;
    this.child = null;
  }

  /** @param {{kill?: boolean}} [how] */
  async restart(how = {}) {
    this.log = '';
    await this.stop(how);
    await this.spawn(`127.0.0.1:${this.port}`);
  }

  async close() {
    await this.stop();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /**
   * The document as the server holds it now, from a fresh connection's welcome.
   * @param {string} doc
   * @returns {Promise<{text: string, revision: number, title: string, counters: Record<string, number>}>}
   */
  async document(doc) {
    const socket = new WebSocket(`ws://127.0.0.1:${this.port}/ws/${doc}`);
    try {
      return await new Promise((resolve, reject) => {
        socket.once('message', (data) => resolve(JSON.parse(data.toString())));
        socket.once('error', reject);
      });
    } finally {
      socket.close();
    }
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
