// A TCP proxy to a port, for tests that need real drops: both ends see the TCP connection end,
// with whatever was in flight lost. Used by the client's tests and by the browser tests (e2e/),
// so it depends on nothing but Node.

import net from 'node:net';

/**
 * A TCP proxy to a port: pages loaded through it open their WebSocket through it too, so that
 * `drop()` is a real drop (both ends see the TCP connection end, with whatever was in flight
 * lost) and `setOffline(true)` refuses new connections.
 */
export class Proxy {
  /** @param {number} port */
  static async start(port) {
    const proxy = new Proxy(port);
    await new Promise((resolve) => proxy.listener.listen(0, '127.0.0.1', () => resolve(undefined)));
    return proxy;
  }

  /** @param {number} target */
  constructor(target) {
    this.target = target;
    this.offline = false;
    /** How many connections were cut by drop(). */
    this.dropped = 0;
    /** @type {Set<net.Socket>} */
    this.sockets = new Set();
    this.listener = net.createServer((client) => {
      if (this.offline) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.target, '127.0.0.1');
      for (const [a, b] of [[client, upstream], [upstream, client]]) {
        this.sockets.add(a);
        a.on('close', () => {
          this.sockets.delete(a);
          b.destroy();
        });
        a.on('error', () => b.destroy());
        a.pipe(b);
      }
    });
  }

  get url() {
    const address = /** @type {net.AddressInfo} */ (this.listener.address());
    return `http://127.0.0.1:${address.port}`;
  }

  /** Cuts every connection through the proxy. */
  drop() {
    this.dropped += this.sockets.size / 2;
    for (const socket of this.sockets) socket.destroy();
  }

  /** @param {boolean} offline while offline, every connection is refused and cut */
  setOffline(offline) {
    this.offline = offline;
    if (offline) this.drop();
  }

  close() {
    this.drop();
    return new Promise((resolve) => this.listener.close(() => resolve(undefined)));
  }
}
