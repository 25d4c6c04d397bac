// The real `tandem` binary for the tests, on a free port, restartable on the same port and
// data; and the document it holds, read from the welcome of a raw WebSocket. It depends on
// nothing but Node, so that the client's tests and the browser tests (e2e/) share it.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Starting the server, or reading a welcome, ends well within this; it guards against hangs. */
const PATIENCE = 30_000;

export const BIN = process.env.TANDEM_BIN ?? fileURLToPath(new URL('../../../../target/debug/tandem', import.meta.url));


/**
 * A running `tandem`. `restart()` stops it (SIGTERM, or SIGKILL with `{kill: true}`) and starts
 * it again on the same port and, when persistent, the same data directory.
 */
export class Server {
  /** @param {{persistent?: boolean, args?: string[]}} [options] */
  static async start(options = {}) {
    const server = new this(options);
    await server.spawn('127.0.0.1:0');
    return server;
  }

  /** @param {{persistent?: boolean, args?: string[]}} options */
  constructor(options) {
    this.dataDir = options.persistent ? mkdtempSync(join(tmpdir(), 'tandem-test-')) : null;
    this.args = options.args ?? [];
    /** @type {import('node:child_process').ChildProcess | null} */
    this.child = null;
    this.port = 0;
    this.log = '';
  }

  /** @param {string} bind */
  async spawn(bind) {
    const storage = this.dataDir ? ['--data-dir', this.dataDir] : ['--in-memory'];
    const child = spawn(BIN, ['--bind', bind, ...storage, ...this.args], {
      env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG ?? 'warn,tandem_server=info' },
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
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${BIN} (build it with cargo build -p tandem-server, or set TANDEM_BIN): ${error.message}`));
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (${code ?? signal}) before listening:\n${this.log}`));
      });
    });
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** @param {{kill?: boolean}} [how] SIGKILL with `kill`, else SIGTERM (a graceful shutdown) */
  async stop(how = {}) {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(how.kill ? 'SIGKILL' : 'SIGTERM');
    await exited;
    this.child = null;
  }

  /** Starts the server again, after stop(), on the same port and data. */
  async startAgain() {
    this.log = '';
    await this.spawn(`127.0.0.1:${this.port}`);
  }

  /** @param {{kill?: boolean}} [how] */
  async restart(how = {}) {
    await this.stop(how);
    await this.startAgain();
  }

  async close() {
    await this.stop();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /**
   * The document as the server holds it now: the welcome of a fresh WebSocket connection.
   * @param {string} doc
   * @returns {Promise<{text: string, revision: number, title: string, counters: Record<string, number>}>}
   */
  document(doc) {
    return readWelcome(this.port, doc);
  }
}

/**
 * Opens a WebSocket to `/ws/{doc}` with nothing but `net` (Node 20 has no WebSocket without a
 * flag, and the suite depends on playwright-core only), reads the first message, the welcome,
 * and closes the connection.
 * @param {number} port
 * @param {string} doc
 * @returns {Promise<any>}
 */
function readWelcome(port, doc) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => fail(new Error(`no welcome for ${doc} within ${PATIENCE} ms`)), PATIENCE);
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    /** @type {Buffer[]} */
    let fragments = [];
    /** @param {Error} error */
    const fail = (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.on('error', fail);
    socket.on('connect', () => {
      const key = randomBytes(16).toString('base64');
      socket.write(
        `GET /ws/${doc} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffer.subarray(0, end).toString();
        if (!/^HTTP\/1\.1 101/.test(head)) {
          fail(new Error(`the server refused the WebSocket: ${head.split('\r\n')[0]}`));
          return;
        }
        upgraded = true;
        buffer = buffer.subarray(end + 4);
      }
      // Server frames are not masked: FIN and opcode, then a 7, 16 or 64 bit length.
      while (buffer.length >= 2) {
        const fin = (buffer[0] & 0x80) !== 0;
        const opcode = buffer[0] & 0x0f;
        let length = buffer[1] & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffer.length < offset + length) return;
        const payload = buffer.subarray(offset, offset + length);
        buffer = buffer.subarray(offset + length);
        if (opcode === 0x8) {
          fail(new Error('the server closed the WebSocket before its welcome'));
          return;
        }
        if (opcode === 0x1 || opcode === 0x0) {
          fragments.push(payload);
          if (fin) {
            clearTimeout(timer);
            const message = JSON.parse(Buffer.concat(fragments).toString('utf8'));
            fragments = [];
            // A masked close frame (1000, normal closure), then the end of the connection.
            const mask = randomBytes(4);
            const code = Buffer.from([0x03, 0xe8]).map((byte, i) => byte ^ mask[i]);
            socket.end(Buffer.concat([Buffer.from([0x88, 0x82]), mask, code]));
            resolve(message);
            return;
          }
        }
        // Pings and pongs before the welcome are of no interest here.
      }
    });
  });
}
