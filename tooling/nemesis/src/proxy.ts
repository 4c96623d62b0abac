import { connect, createServer, type Server, type Socket } from 'node:net';
import { parseAddress } from '@paxkv/common';
import { DEFAULT_PROXY_MAX_FRAME_BYTES, FrameSplitter, peerHelloSource } from './frames.js';
import { Rng } from './rng.js';

/** One end of a directed link: a server's node id, or `'client'` for every connection that is not a peer's. */
export type LinkEnd = number | 'client';

/**
 * What the proxy does with the frames of one directed link (src → dst).
 *
 * - `pass`: forward unchanged.
 * - `cut` / `refuse`: existing connections whose initiator-to-target direction is this link are closed at
 *   once, new ones are closed right after their first frame, and a connection that carries this link the
 *   other way is closed when its first frame in this direction arrives (a session break: nothing after it
 *   is delivered).
 * - `cut` / `blackhole`: connections stay open but the frames of this direction are swallowed. Because paxkv
 *   assumes FIFO sessions (a message is delivered in order or the session breaks), a connection that
 *   swallowed anything is closed when the rule is lifted, like a TCP connection that timed out.
 * - `blackhole`: the bytes of this direction stop, nothing else happens: the connection stays open, no
 *   reset or FIN crosses (an endpoint that closes its socket meanwhile is not seen closing by the other),
 *   and the held frames (bounded by `maxQueuedBytes`, then the sender feels TCP backpressure) are
 *   delivered in order when the rule is lifted, followed by any close that was held. This is what a
 *   firewall DROP rule does to a TCP connection (minus the kernel's retransmission backoff): only an
 *   application-level liveness check notices it.
 * - `delay`: every frame is held `ms` plus a uniform `0..jitterMs`, never reordered within a connection.
 * - `drop-then-close`: each frame is dropped with `probability`, and a drop closes the connection (a lossy
 *   link in the FIFO-session model: a loss is a session break).
 */
export type LinkRule =
  | { readonly kind: 'pass' }
  | { readonly kind: 'cut'; readonly mode: 'refuse' | 'blackhole' }
  | { readonly kind: 'blackhole' }
  | { readonly kind: 'delay'; readonly ms: number; readonly jitterMs: number }
  | { readonly kind: 'drop-then-close'; readonly probability: number };

/** The rule of a link that has none. */
export const PASS: LinkRule = Object.freeze({ kind: 'pass' });

/** Configuration of a {@link FaultProxy}; every field has a default. */
export interface FaultProxyConfig {
  /** Interface the listeners bind to. Default `127.0.0.1`. */
  readonly host: string;
  /** Largest frame payload forwarded; a larger declared length closes the connection. Default 16 MiB. */
  readonly maxFrameBytes: number;
  /**
   * Bytes a connection direction may hold (delayed or waiting for the socket to drain) before the proxy
   * stops reading from the sender; reading resumes below half of it. Default 8 MiB.
   */
  readonly maxQueuedBytes: number;
  /**
   * How long an accepted connection may stay silent before it is classified as a client's (frames the
   * target sends before the initiator's first frame wait for the classification). Default 2000 ms.
   */
  readonly identifyTimeoutMs: number;
  /** Seed of the proxy's own random choices (jitter, drops). Default 1. */
  readonly seed: number;
  /**
   * How the source of a connection is learnt. `first-frame` (default): from its first frame (`peer.hello`
   * or, with a cluster token, `auth.hello`); rules apply per frame. `source-address`: from the IP it comes
   * from, the host of the listener of the node whose IP it is (each server on its own loopback address,
   * binding its outgoing peer connections to it, as a firewall sees them), anything else is a client; the
   * proxy then never reads the stream, which may be TLS: it relays bytes as they arrive and rules apply per
   * chunk read (a drop still closes the connection, a blackhole holds the bytes in order).
   */
  readonly identifyBy: 'first-frame' | 'source-address';
}

/** Defaults of {@link FaultProxyConfig}. */
export const DEFAULT_FAULT_PROXY_CONFIG: FaultProxyConfig = Object.freeze({
  host: '127.0.0.1',
  maxFrameBytes: DEFAULT_PROXY_MAX_FRAME_BYTES,
  maxQueuedBytes: 8 * 1024 * 1024,
  identifyTimeoutMs: 2000,
  seed: 1,
  identifyBy: 'first-frame',
});

/** Counters of a {@link FaultProxy}, for summaries and tests. */
export interface FaultProxyStats {
  /** Connections accepted by all listeners. */
  accepted: number;
  /** Connections identified as peer connections (first frame `peer.hello`). */
  peerConnections: number;
  /** Connections closed by the proxy because of a rule (refused, cut, lifted blackhole, drop). */
  closedByRule: number;
  /** Frames forwarded. */
  framesForwarded: number;
  /** Frames swallowed or dropped by a rule. */
  framesDropped: number;
  /** Frames held by a delay rule. */
  framesDelayed: number;
  /** Frames held by a blackhole rule (delivered when it is lifted). */
  framesHeld: number;
}

/** A live proxied connection, as reported by {@link FaultProxy.connections}. */
export interface ProxiedConnectionInfo {
  /** Proxy-local id of the connection. */
  readonly id: number;
  /** Source: the initiator's node id, `'client'`, or `undefined` while not yet classified. */
  readonly from: LinkEnd | undefined;
  /** The target node of the listener that accepted it. */
  readonly to: number;
}

/** Something the proxy did, reported to {@link FaultProxy.onEvent} listeners (logging, tests). */
export type FaultProxyEvent =
  | { readonly kind: 'identified'; readonly conn: number; readonly from: LinkEnd; readonly to: number }
  | {
      readonly kind: 'closed-by-rule';
      readonly conn: number;
      readonly from: LinkEnd;
      readonly to: number;
      readonly reason: string;
    }
  | { readonly kind: 'upstream-error'; readonly conn: number; readonly to: number; readonly message: string };

/** Error thrown for misuse of the proxy API (the message says what to do). */
export class FaultProxyError extends Error {
  override readonly name = 'FaultProxyError';
}

interface QueuedFrame {
  readonly at: number;
  readonly frame: Buffer;
}

/** One direction of a proxied connection. */
class Direction {
  readonly queue: QueuedFrame[] = [];
  queuedBytes = 0;
  lastAt = 0;
  timer: NodeJS.Timeout | undefined;
  tainted = false;
  /** The source closed while this direction was black-holed: propagate the close once it is lifted. */
  closeHeld = false;
  /** Reading stopped because too many bytes are queued. */
  readPaused = false;
  /** Reading stopped until the sink drains. */
  waitingDrain = false;

  constructor(
    readonly conn: ProxiedConnection,
    readonly source: Socket,
    readonly sink: Socket,
    readonly upstream: boolean,
  ) {}

  /** The directed link of this direction (undefined while the connection is not classified). */
  link(): readonly [LinkEnd, LinkEnd] | undefined {
    const from = this.conn.from;
    if (from === undefined) return undefined;
    return this.upstream ? [from, this.conn.to] : [this.conn.to, from];
  }
}

class ProxiedConnection {
  from: LinkEnd | undefined;
  closed = false;
  readonly up: Direction;
  readonly down: Direction;
  /** Downstream frames that arrived before classification. */
  readonly early: Buffer[] = [];
  identifyTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    public to: number,
    readonly client: Socket,
    readonly server: Socket,
  ) {
    this.up = new Direction(this, client, server, true);
    this.down = new Direction(this, server, client, false);
  }
}

const linkKey = (from: LinkEnd, to: LinkEnd): string => `${from}->${to}`;

/**
 * A fault-injecting TCP proxy for paxkv servers. It opens one listener per target server and forwards every
 * connection to that server; servers advertise the proxy's address instead of their own, so all traffic
 * between them (and from clients) crosses the proxy. The proxy parses the paxkv framing (4-byte big-endian
 * length + msgpack), learns the source node of a peer connection from its first frame
 * (`{ type: 'peer.hello', from }`), treats every other connection as a client's, and applies a
 * {@link LinkRule} per directed link (src → dst) at frame granularity.
 *
 * It is test tooling, never in the product's path. Call {@link close} when done.
 */
export class FaultProxy {
  /** Effective configuration. */
  readonly config: FaultProxyConfig;
  /** Counters since creation. */
  readonly stats: FaultProxyStats = {
    accepted: 0,
    peerConnections: 0,
    closedByRule: 0,
    framesForwarded: 0,
    framesDropped: 0,
    framesDelayed: 0,
    framesHeld: 0,
  };
  private readonly rng: Rng;
  private readonly listeners = new Map<
    number,
    { server: Server; target: { host: string; port: number }; address: string }
  >();
  private readonly rules = new Map<string, LinkRule>();
  private readonly conns = new Set<ProxiedConnection>();
  private readonly eventListeners = new Set<(e: FaultProxyEvent) => void>();
  private nextConnId = 1;
  private closing = false;

  constructor(config: Partial<FaultProxyConfig> = {}) {
    this.config = { ...DEFAULT_FAULT_PROXY_CONFIG, ...config };
    if (!(this.config.maxQueuedBytes > 0)) throw new FaultProxyError('maxQueuedBytes must be positive');
    this.rng = new Rng(this.config.seed);
  }

  /**
   * Opens a listener that forwards to `target` (`host:port`) and treats it as node `node`.
   * @param port - the port to listen on; 0 (default) picks a free one.
   * @param host - the interface to listen on. Default `config.host`; with `identifyBy: 'source-address'`
   *   the node's own address, from which it also dials its peers.
   * @returns the listener's address `host:port`, to be advertised by that server.
   */
  async addTarget(node: number, target: string, port = 0, host = this.config.host): Promise<string> {
    if (!Number.isInteger(node) || node <= 0)
      throw new FaultProxyError(`node must be a positive integer, got ${node}`);
    if (this.listeners.has(node))
      throw new FaultProxyError(`node ${node} already has a listener; removeTarget first`);
    const parsed = parseHostPort(target);
    if (this.config.identifyBy === 'source-address') {
      for (const [other, l] of this.listeners) {
        if (l.address.startsWith(`${formatHost(host)}:`))
          throw new FaultProxyError(
            `node ${other} already listens on ${host}: with identifyBy 'source-address' give every node its own address (e.g. 127.0.0.<10+slot>)`,
          );
      }
    }
    const entry = { server: undefined as unknown as Server, target: parsed, address: '' };
    const server = createServer((socket) => this.accept(entry, socket));
    entry.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => {});
    const info = server.address();
    if (info === null || typeof info === 'string') throw new FaultProxyError('listener has no TCP address');
    entry.address = `${formatHost(host)}:${info.port}`;
    this.listeners.set(node, entry);
    return entry.address;
  }

  /** The listener address of `node`, or `undefined`. */
  addressOf(node: number): string | undefined {
    return this.listeners.get(node)?.address;
  }

  /**
   * Renames the target of a listener, for servers whose node id is only known once they have started (the
   * bootstrap server assigns ids at check-in): open the listener under a provisional id, start the server
   * with the listener's address as its advertised address, learn its id, then rebind. Rules keyed by the new
   * id apply to the listener's connections from then on.
   */
  rebindTarget(oldNode: number, newNode: number): void {
    if (oldNode === newNode) return;
    const l = this.listeners.get(oldNode);
    if (l === undefined) throw new FaultProxyError(`no listener for node ${oldNode}; call addTarget first`);
    if (this.listeners.has(newNode)) throw new FaultProxyError(`node ${newNode} already has a listener`);
    if (!Number.isInteger(newNode) || newNode <= 0)
      throw new FaultProxyError(`node must be a positive integer, got ${newNode}`);
    this.listeners.delete(oldNode);
    this.listeners.set(newNode, l);
    for (const c of this.conns) {
      if (c.to === oldNode) c.to = newNode;
      if (c.from === oldNode) c.from = newNode; // identified by source address before the rebind
    }
    this.reapply();
  }

  /** Closes the listener of `node` and every connection through it. */
  async removeTarget(node: number): Promise<void> {
    const l = this.listeners.get(node);
    if (l === undefined) return;
    this.listeners.delete(node);
    for (const c of [...this.conns]) if (c.to === node) this.destroy(c);
    await new Promise<void>((resolve) => l.server.close(() => resolve()));
  }

  /** Subscribes to proxy events; returns the unsubscribe function. */
  onEvent(listener: (e: FaultProxyEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** The rule in force on the directed link `from → to`. */
  rule(from: LinkEnd, to: LinkEnd): LinkRule {
    return this.rules.get(linkKey(from, to)) ?? PASS;
  }

  /** Sets the rule of one directed link and applies it to live connections at once. */
  setRule(from: LinkEnd, to: LinkEnd, rule: LinkRule): void {
    validateRule(rule);
    const key = linkKey(from, to);
    if (rule.kind === 'pass') this.rules.delete(key);
    else this.rules.set(key, rule);
    this.reapply();
  }

  /** Sets the same rule on both directions between `a` and `b`. */
  setRuleBoth(a: LinkEnd, b: LinkEnd, rule: LinkRule): void {
    validateRule(rule);
    for (const [f, t] of [
      [a, b],
      [b, a],
    ] as const) {
      if (rule.kind === 'pass') this.rules.delete(linkKey(f, t));
      else this.rules.set(linkKey(f, t), rule);
    }
    this.reapply();
  }

  /** Replaces all rules by `cut` on the given directed links (a partition), everything else passes. */
  partition(
    links: ReadonlyArray<readonly [LinkEnd, LinkEnd]>,
    mode: 'refuse' | 'blackhole' = 'refuse',
  ): void {
    this.rules.clear();
    for (const [f, t] of links) this.rules.set(linkKey(f, t), { kind: 'cut', mode });
    this.reapply();
  }

  /** Removes every rule (heals all links). Connections that swallowed frames are closed (see {@link LinkRule}). */
  heal(): void {
    this.rules.clear();
    this.reapply();
  }

  /** The links that currently have a rule other than pass. */
  activeRules(): Array<{ from: string; to: string; rule: LinkRule }> {
    return [...this.rules].map(([k, rule]) => {
      const [from = '', to = ''] = k.split('->');
      return { from, to, rule };
    });
  }

  /** Live connections. */
  connections(): ProxiedConnectionInfo[] {
    return [...this.conns].map((c) => ({ id: c.id, from: c.from, to: c.to }));
  }

  /** Closes every listener and connection. */
  async close(): Promise<void> {
    this.closing = true;
    for (const c of [...this.conns]) this.destroy(c);
    const all = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(all.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))));
  }

  private nodeOfListener(listener: object): number | undefined {
    for (const [node, l] of this.listeners) if (l === listener) return node;
    return undefined;
  }

  /** The node whose listener listens on `ip` (`identifyBy: 'source-address'`), else `'client'`. */
  private sourceOf(ip: string | undefined): LinkEnd {
    const host = ip?.replace(/^::ffff:/, '');
    for (const [node, l] of this.listeners)
      if (l.address.startsWith(`${formatHost(host ?? '')}:`)) return node;
    return 'client';
  }

  private emit(e: FaultProxyEvent): void {
    for (const l of this.eventListeners) {
      try {
        l(e);
      } catch {
        // A listener's failure must not break forwarding.
      }
    }
  }

  private accept(listener: { target: { host: string; port: number } }, client: Socket): void {
    const node = this.nodeOfListener(listener);
    const l = node === undefined ? undefined : this.listeners.get(node);
    if (l === undefined || this.closing) {
      client.destroy();
      return;
    }
    this.stats.accepted += 1;
    client.setNoDelay(true);
    const server = connect({ host: l.target.host, port: l.target.port });
    server.setNoDelay(true);
    const conn = new ProxiedConnection(this.nextConnId++, node as number, client, server);
    this.conns.add(conn);
    const upSplit = new FrameSplitter(this.config.maxFrameBytes);
    const downSplit = new FrameSplitter(this.config.maxFrameBytes);
    // A close travels in the closing side's outgoing direction: a black hole there holds it.
    const onClose = (dir: Direction) => (): void => {
      if (conn.closed) return;
      if (this.isHeld(dir)) {
        dir.closeHeld = true;
        return;
      }
      this.destroy(conn);
    };
    client.on('error', onClose(conn.up));
    server.on('error', (err) => {
      this.emit({ kind: 'upstream-error', conn: conn.id, to: conn.to, message: err.message });
      onClose(conn.down)();
    });
    client.on('close', onClose(conn.up));
    server.on('close', onClose(conn.down));
    if (this.config.identifyBy === 'source-address') {
      // Opaque relay (the stream may be TLS): each chunk read is a unit for the rules.
      client.on('data', (chunk: Buffer) => this.onFrame(conn.up, chunk));
      server.on('data', (chunk: Buffer) => this.onFrame(conn.down, chunk));
      this.identify(conn, this.sourceOf(client.remoteAddress));
      return;
    }
    conn.identifyTimer = setTimeout(() => this.identify(conn, 'client'), this.config.identifyTimeoutMs);
    conn.identifyTimer.unref();
    client.on('data', (chunk: Buffer) => {
      const frames = upSplit.push(chunk);
      if (frames === 'oversized') return this.destroy(conn);
      // Cork the sink so the frames of one read leave in one write.
      server.cork();
      for (const f of frames) {
        if (conn.closed) break;
        if (conn.from === undefined) this.identify(conn, peerHelloSource(f) ?? 'client');
        if (conn.closed) break;
        this.onFrame(conn.up, f);
      }
      server.uncork();
    });
    server.on('data', (chunk: Buffer) => {
      const frames = downSplit.push(chunk);
      if (frames === 'oversized') return this.destroy(conn);
      client.cork();
      for (const f of frames) {
        if (conn.closed) break;
        if (conn.from === undefined) conn.early.push(f);
        else this.onFrame(conn.down, f);
      }
      client.uncork();
    });
  }

  private identify(conn: ProxiedConnection, from: LinkEnd): void {
    if (conn.from !== undefined || conn.closed) return;
    if (conn.identifyTimer !== undefined) clearTimeout(conn.identifyTimer);
    conn.from = from;
    if (from !== 'client') this.stats.peerConnections += 1;
    this.emit({ kind: 'identified', conn: conn.id, from, to: conn.to });
    const up = this.rule(from, conn.to);
    if (up.kind === 'cut' && up.mode === 'refuse') {
      this.closeByRule(conn, 'refused: link cut');
      return;
    }
    const early = conn.early.splice(0);
    for (const f of early) {
      if (conn.closed) return;
      this.onFrame(conn.down, f);
    }
  }

  private onFrame(dir: Direction, frame: Buffer): void {
    const link = dir.link();
    if (link === undefined) return;
    const rule = this.rule(link[0], link[1]);
    const now = Date.now();
    switch (rule.kind) {
      case 'pass':
        this.enqueue(dir, frame, Math.max(now, dir.lastAt));
        return;
      case 'delay': {
        const jitter = rule.jitterMs > 0 ? this.rng.next() * rule.jitterMs : 0;
        this.stats.framesDelayed += 1;
        this.enqueue(dir, frame, Math.max(now + rule.ms + jitter, dir.lastAt));
        return;
      }
      case 'blackhole':
        this.stats.framesHeld += 1;
        dir.lastAt = Number.POSITIVE_INFINITY;
        dir.queue.push({ at: Number.POSITIVE_INFINITY, frame });
        dir.queuedBytes += frame.length;
        if (dir.queuedBytes > this.config.maxQueuedBytes && !dir.readPaused) {
          dir.readPaused = true;
          dir.source.pause();
        }
        return;
      case 'cut':
        this.stats.framesDropped += 1;
        if (rule.mode === 'refuse') this.closeByRule(dir.conn, `frame on cut link ${link[0]}->${link[1]}`);
        else dir.tainted = true;
        return;
      case 'drop-then-close':
        if (this.rng.chance(rule.probability)) {
          this.stats.framesDropped += 1;
          this.closeByRule(dir.conn, `dropped a frame on ${link[0]}->${link[1]}`);
        } else {
          this.enqueue(dir, frame, Math.max(now, dir.lastAt));
        }
        return;
    }
  }

  private enqueue(dir: Direction, frame: Buffer, at: number): void {
    dir.lastAt = at;
    if (dir.queue.length === 0 && at <= Date.now()) {
      this.write(dir, frame);
      return;
    }
    dir.queue.push({ at, frame });
    dir.queuedBytes += frame.length;
    if (dir.queuedBytes > this.config.maxQueuedBytes && !dir.readPaused) {
      dir.readPaused = true;
      dir.source.pause();
    }
    this.schedule(dir);
  }

  private schedule(dir: Direction): void {
    if (dir.timer !== undefined || dir.conn.closed) return;
    const head = dir.queue[0];
    if (head === undefined || head.at === Number.POSITIVE_INFINITY) return;
    dir.timer = setTimeout(
      () => {
        dir.timer = undefined;
        this.pump(dir);
      },
      Math.max(0, head.at - Date.now()),
    );
  }

  private pump(dir: Direction): void {
    const now = Date.now();
    while (!dir.conn.closed) {
      const head = dir.queue[0];
      if (head === undefined || head.at > now) break;
      dir.queue.shift();
      dir.queuedBytes -= head.frame.length;
      this.write(dir, head.frame);
    }
    if (dir.readPaused && dir.queuedBytes <= this.config.maxQueuedBytes / 2) {
      dir.readPaused = false;
      if (!dir.waitingDrain) dir.source.resume();
    }
    this.schedule(dir);
  }

  private write(dir: Direction, frame: Buffer): void {
    if (dir.conn.closed) return;
    this.stats.framesForwarded += 1;
    const ok = dir.sink.write(frame);
    if (!ok && !dir.waitingDrain) {
      dir.waitingDrain = true;
      dir.source.pause();
      dir.sink.once('drain', () => {
        dir.waitingDrain = false;
        if (!dir.readPaused && !dir.conn.closed) dir.source.resume();
      });
    }
  }

  /** True while `dir` is black-holed (its bytes and its close are held). */
  private isHeld(dir: Direction): boolean {
    const link = dir.link();
    return link !== undefined && this.rule(link[0], link[1]).kind === 'blackhole';
  }

  /** A blackhole on `dir` was lifted: release its held frames in order, then any held close. */
  private release(dir: Direction): void {
    const now = Date.now();
    let any = false;
    for (let i = 0; i < dir.queue.length; i++) {
      const q = dir.queue[i] as QueuedFrame;
      if (q.at === Number.POSITIVE_INFINITY) {
        dir.queue[i] = { at: now, frame: q.frame };
        any = true;
      }
    }
    if (dir.lastAt === Number.POSITIVE_INFINITY) dir.lastAt = now;
    if (any) this.pump(dir);
    if (dir.closeHeld && !dir.conn.closed) {
      // Let the released frames reach the kernel before the close follows them.
      dir.sink.end();
      setTimeout(() => this.destroy(dir.conn), 50).unref();
    }
  }

  private reapply(): void {
    for (const conn of [...this.conns]) {
      if (conn.closed || conn.from === undefined) continue;
      for (const dir of [conn.up, conn.down]) {
        const link = dir.link();
        if (link === undefined) continue;
        const rule = this.rule(link[0], link[1]);
        if (rule.kind !== 'blackhole' && (dir.lastAt === Number.POSITIVE_INFINITY || dir.closeHeld)) {
          this.release(dir);
          if (conn.closed) break;
        }
        if (dir.tainted && !(rule.kind === 'cut' && rule.mode === 'blackhole')) {
          this.closeByRule(conn, `blackhole on ${link[0]}->${link[1]} lifted after swallowing frames`);
          break;
        }
        if (dir.upstream && rule.kind === 'cut' && rule.mode === 'refuse') {
          this.closeByRule(conn, `link ${link[0]}->${link[1]} cut`);
          break;
        }
      }
    }
  }

  private closeByRule(conn: ProxiedConnection, reason: string): void {
    if (conn.closed) return;
    this.stats.closedByRule += 1;
    this.emit({ kind: 'closed-by-rule', conn: conn.id, from: conn.from ?? 'client', to: conn.to, reason });
    this.destroy(conn);
  }

  private destroy(conn: ProxiedConnection): void {
    if (conn.closed) return;
    conn.closed = true;
    this.conns.delete(conn);
    if (conn.identifyTimer !== undefined) clearTimeout(conn.identifyTimer);
    for (const d of [conn.up, conn.down]) {
      if (d.timer !== undefined) clearTimeout(d.timer);
      d.queue.length = 0;
    }
    conn.client.destroy();
    conn.server.destroy();
  }
}

function validateRule(rule: LinkRule): void {
  switch (rule.kind) {
    case 'pass':
    case 'cut':
    case 'blackhole':
      return;
    case 'delay':
      if (!(rule.ms >= 0) || !(rule.jitterMs >= 0))
        throw new FaultProxyError(`delay needs ms >= 0 and jitterMs >= 0, got ${rule.ms}/${rule.jitterMs}`);
      return;
    case 'drop-then-close':
      if (!(rule.probability >= 0 && rule.probability <= 1))
        throw new FaultProxyError(`drop-then-close needs a probability in [0, 1], got ${rule.probability}`);
      return;
  }
}

/**
 * Splits `host:port` (IPv6 hosts in brackets) with `@paxkv/common`'s `parseAddress`, the one parser of
 * the project. Throws {@link FaultProxyError} on bad input.
 */
export function parseHostPort(address: string): { host: string; port: number } {
  const hp = parseAddress(address);
  if (hp instanceof Error)
    throw new FaultProxyError(
      `address must be host:port (IPv6 in brackets), got "${address}": ${hp.message}`,
    );
  return { host: hp.host, port: hp.port };
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
