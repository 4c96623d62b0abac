/**
 * A framed, typed-error, backpressure-aware wrapper around one TCP socket.
 * @module
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  type FrameResult,
  type InboundFrameLimits,
} from '../codec/framing.js';
import type { Codec } from '../codec/msgpack.js';
import {
  BackpressureError,
  ConnectionClosedError,
  errorToWire,
  FrameTooLargeError,
  InternalError,
  isPaxkvError,
  type PaxkvError,
  TimeoutError,
} from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { InboundBudget } from './inbound-budget.js';
import { type ConnectionConfig, DEFAULT_UNIDENTIFIED_MAX_FRAME_BYTES } from './options.js';
import { isTlsSocket, type TlsPeer, tlsFailure, tlsPeerOf } from './tls.js';

/** Events of a {@link FramedConnection}. None is called `error`, so an unhandled one never crashes. */
export interface FramedConnectionEvents {
  /** A decoded message (not yet validated: pass it to a `parse...` function of the protocol). */
  message: [message: unknown];
  /**
   * Bad input from the peer: a payload that is not msgpack (`DecodeError`, the connection stays
   * open), an oversized frame (`FrameTooLargeError`, the connection is then closed) or a stream cut
   * inside a frame (`TruncatedFrameError`).
   */
  protocolError: [error: PaxkvError];
  /** The outgoing buffer fell to half the high-water mark after a send was refused. */
  drain: [];
  /** The connection closed. `reason` is undefined for an orderly close. Emitted once. */
  close: [reason: PaxkvError | undefined];
}

/** Extra wiring of a {@link FramedConnection}. */
export interface FramedConnectionDeps {
  /** Codec of the payloads. Default msgpack. */
  readonly codec?: Codec;
  /** Logger for connection-level events. Default: none. */
  readonly logger?: Logger;
  /** A budget of partial-frame bytes shared with other connections (see {@link InboundBudget}). Default: none. */
  readonly inboundBudget?: InboundBudget;
  /**
   * On a TLS socket: which side this is (`dial` or `accept`), so a TLS failure after the handshake (a
   * TLS 1.3 server rejecting the client certificate) is reported as a `TlsError` that says what to fix.
   */
  readonly tlsSide?: 'dial' | 'accept';
  /**
   * Inbound limits to start with instead of the config's `maxFrameBytes` / `maxItemsPerFrame` (a server
   * starts connections it does not know yet with small ones). Default: the config's.
   */
  readonly inboundLimits?: InboundFrameLimits;
  /**
   * A small message sent ahead of this connection's first frame when that frame's payload is larger than
   * `aboveBytes` (and nothing was sent before it): a server accepts only small frames from a connection
   * it has not identified yet (`TransportServer` `unidentifiedMaxFrameBytes`), so a client whose first
   * request is large introduces itself first. Default: none.
   */
  readonly introduction?: Introduction;
}

/** See {@link FramedConnectionDeps.introduction}. */
export interface Introduction {
  /** The message (a cheap request the server answers, e.g. `{ type: 'lookup', id: 0 }`). */
  readonly message: unknown;
  /** Send it only before a first frame whose payload exceeds this many bytes. Default 64 KiB. */
  readonly aboveBytes?: number;
}

/** Counters of one connection since it opened (for metrics and logs). */
export interface ConnectionStats {
  /** Frames queued for sending. */
  framesOut: number;
  /** Bytes queued for sending, headers included. */
  bytesOut: number;
  /** Frames received and decoded (valid msgpack). */
  framesIn: number;
  /** Bytes received. */
  bytesIn: number;
  /** Sends refused or writes rejected because of backpressure. */
  refused: number;
  /** Protocol errors reported (bad payloads, oversized or truncated frames). */
  protocolErrors: number;
  /** Keepalive frames sent (not counted in `framesOut`). */
  keepalivesOut: number;
  /** Keepalive frames received (not counted in `framesIn`). */
  keepalivesIn: number;
}

/** Liveness settings of a connection (see `livenessTimeoutMs` and `keepaliveIntervalMs` in the config). */
export interface LivenessSettings {
  /** Close the connection after this much silence from the peer, in ms; 0 disables. */
  readonly livenessTimeoutMs: number;
  /** Send a keepalive after this long without sending, in ms; 0 disables. */
  readonly keepaliveIntervalMs: number;
}

/**
 * What a {@link Handshake} hook talks through: the connection before the application sees it. Messages
 * the hook does not `receive()` (because it returned first, or only `peek()`ed them) reach the
 * application afterwards, in order.
 */
export interface HandshakeChannel {
  /** `client` on the side that dialled, `server` on the side that accepted. */
  readonly role: 'client' | 'server';
  /** `host:port` of the peer as seen by the socket. */
  readonly remoteAddress: string;
  /** Sends one message to the peer; false if the connection is closed or full. */
  send(message: unknown): boolean;
  /**
   * The next message from the peer, consumed by the hook. Rejects with `ConnectionClosedError` when
   * the connection closes first (including when the handshake timeout closes it).
   */
  receive(): Promise<unknown>;
  /** The next message from the peer, left in the queue for the application. Rejects like `receive`. */
  peek(): Promise<unknown>;
}

/**
 * A hook run on every new connection before the application uses it (on `TransportServer` accept, and
 * on each `ReconnectingConnection` (re)connect). It may exchange messages through the channel (an
 * authentication challenge, say). Resolving lets the connection through, and what it resolves with is
 * kept as {@link FramedConnection.handshakeResult} (a verified peer identity, say); rejecting, or taking
 * longer than `handshakeTimeoutMs`, closes the connection with that error.
 */
export type Handshake = (channel: HandshakeChannel) => Promise<unknown>;

/** The payload of a keepalive frame: msgpack `nil`. */
const KEEPALIVE: null = null;

interface PendingWrite {
  readonly frame: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (e: PaxkvError) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * One TCP connection carrying length-prefixed msgpack frames.
 *
 * Sending: {@link FramedConnection.send} queues a frame or refuses it (returns false) when the
 * outgoing buffer is at its high-water mark; {@link FramedConnection.write} waits for room instead.
 * Memory per connection is bounded by `highWaterMark + maxFrameBytes` outgoing and one frame plus
 * one chunk incoming. Receiving: every complete frame is emitted as `message`; bad input is
 * reported as `protocolError` and never throws. A listener that throws closes this connection with
 * an `InternalError` rather than the process.
 */
export class FramedConnection extends EventEmitter<FramedConnectionEvents> {
  /** The settings in force. */
  readonly config: ConnectionConfig;
  /** `host:port` of the peer as seen by the socket (`unknown` if the socket does not know it). */
  readonly remoteAddress: string;
  private readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private readonly codec: Codec | undefined;
  private readonly logger: Logger | undefined;
  private readonly pending: PendingWrite[] = [];
  private pressured = false;
  private readonly counters: ConnectionStats = {
    framesOut: 0,
    bytesOut: 0,
    framesIn: 0,
    bytesIn: 0,
    refused: 0,
    protocolErrors: 0,
    keepalivesOut: 0,
    keepalivesIn: 0,
  };
  private liveness: LivenessSettings = { livenessTimeoutMs: 0, keepaliveIntervalMs: 0 };
  private livenessTimer: NodeJS.Timeout | undefined;
  private lastReceivedAt = performance.now();
  private lastSentAt = performance.now();
  private lastCheckAt = performance.now();
  private checkEveryMs = 0;
  private held: unknown[] | undefined;
  private readonly heldWaiters: (() => void)[] = [];
  private handshakeValue: unknown;
  private readonly inboundBudget: InboundBudget | undefined;
  private introduction: Introduction | undefined;
  private trustedFlag = false;
  private tlsPeerValue: TlsPeer | undefined;
  private idleTimeoutMs = 0;
  private corked = false;
  private refusing = false;
  private closed = false;
  private closeReason: PaxkvError | undefined;

  /**
   * Wraps a connected socket. The socket is owned by the connection from now on.
   * @param socket a connected socket (from a server's `connection` event or `net.connect`).
   * @param config fully resolved settings (parse them with `ConnectionConfigSchema`).
   */
  constructor(socket: Socket, config: ConnectionConfig, deps: FramedConnectionDeps = {}) {
    super();
    this.socket = socket;
    this.config = config;
    this.codec = deps.codec;
    this.logger = deps.logger;
    this.inboundBudget = deps.inboundBudget;
    this.introduction = deps.introduction;
    const host = socket.remoteAddress;
    this.remoteAddress =
      host === undefined
        ? 'unknown'
        : host.includes(':')
          ? `[${host}]:${socket.remotePort}`
          : `${host}:${socket.remotePort}`;
    this.decoder = new FrameDecoder({
      maxFrameBytes: deps.inboundLimits?.maxFrameBytes ?? config.maxFrameBytes,
      maxItemsPerFrame: deps.inboundLimits?.maxItemsPerFrame ?? config.maxItemsPerFrame,
      ...(deps.codec ? { codec: deps.codec } : {}),
    });
    socket.setNoDelay(config.noDelay);
    if (config.keepAliveMs > 0) socket.setKeepAlive(true, config.keepAliveMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (e) => {
      const side = deps.tlsSide;
      if (side && isTlsSocket(socket))
        this.closeReason ??= tlsFailure(e, this.remoteAddress, side) ?? undefined;
      this.closeReason ??= new ConnectionClosedError(
        { address: this.remoteAddress, reason: e.message },
        { cause: e },
      );
    });
    socket.on('close', () => this.onClose());
    this.setLiveness(config);
    socket.on('timeout', () =>
      this.destroy(
        new TimeoutError({
          timeoutMs: this.idleTimeoutMs,
          operation: `connection to ${this.remoteAddress} (idle)`,
        }),
      ),
    );
    this.setIdleTimeout(config.idleTimeoutMs);
  }

  /**
   * Closes the connection when nothing was read or written for `ms` (0 turns it off), from now on. A
   * server uses it to give connections of different kinds different limits (a client that went quiet,
   * a stranger that never introduced itself) once it knows what a connection is.
   */
  setIdleTimeout(ms: number): void {
    this.idleTimeoutMs = ms;
    this.socket.setTimeout(ms);
  }

  /** Whether the application marked this connection as an authenticated peer (see {@link FramedConnection.markTrusted}). */
  get trusted(): boolean {
    return this.trustedFlag;
  }

  /**
   * Marks the connection as an authenticated peer: the server's inbound budget evicts it only after every
   * untrusted connection, and a full server evicts untrusted connections only. Use
   * `TransportServer.trust`, which also enforces the server's budget of trusted connections.
   */
  markTrusted(): void {
    this.trustedFlag = true;
  }

  /**
   * Decodes this connection's frames of at most `bytes` bytes without the msgpack pre-scan, from the next
   * frame on (larger frames are still scanned as they arrive). Only for a connection whose other side
   * proved who it is (a server's peer that holds the cluster token or a CA-signed server certificate):
   * see {@link FrameDecoder.trustPayloadsUpTo} for what it costs in bounds. 0 scans every frame again.
   */
  trustPayloads(bytes: number): void {
    this.decoder.trustPayloadsUpTo(bytes);
  }

  /**
   * What the TLS handshake established about the other side (its certificate, whether the CA signed
   * it), or undefined on a plain TCP connection.
   */
  get tlsPeer(): TlsPeer | undefined {
    if (!isTlsSocket(this.socket)) return undefined;
    this.tlsPeerValue ??= tlsPeerOf(this.socket);
    return this.tlsPeerValue;
  }

  /** True while frames can be sent: not closed, not being closed, not destroyed. */
  get isOpen(): boolean {
    return !this.closed && !this.socket.destroyed && this.socket.writable;
  }

  /** A snapshot of the connection's counters. */
  get stats(): Readonly<ConnectionStats> {
    return { ...this.counters };
  }

  /** What the {@link Handshake} hook resolved with (undefined without a hook). */
  get handshakeResult(): unknown {
    return this.handshakeValue;
  }

  /** The liveness settings in force. */
  get livenessSettings(): LivenessSettings {
    return this.liveness;
  }

  /**
   * Changes the liveness settings of this connection (e.g. once an inbound connection introduced itself
   * as a peer link). Silence is counted from now.
   */
  setLiveness(settings: LivenessSettings): void {
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.livenessTimer = undefined;
    this.liveness = {
      livenessTimeoutMs: settings.livenessTimeoutMs,
      keepaliveIntervalMs: settings.keepaliveIntervalMs,
    };
    const { livenessTimeoutMs: dead, keepaliveIntervalMs: keep } = this.liveness;
    if ((dead <= 0 && keep <= 0) || this.closed) return;
    const now = performance.now();
    this.lastReceivedAt = now;
    this.lastCheckAt = now;
    // Check often enough to send keepalives on time and to see silence within a quarter of the timeout.
    this.checkEveryMs = Math.max(
      1,
      Math.min(
        keep > 0 ? keep / 2 : Number.POSITIVE_INFINITY,
        dead > 0 ? dead / 4 : Number.POSITIVE_INFINITY,
      ),
    );
    this.livenessTimer = setInterval(this.checkLiveness, this.checkEveryMs);
    this.livenessTimer.unref?.();
  }

  private readonly checkLiveness = (): void => {
    if (this.closed) return;
    const now = performance.now();
    const late = now - this.lastCheckAt > this.checkEveryMs * 2 + 20;
    this.lastCheckAt = now;
    const { livenessTimeoutMs: dead, keepaliveIntervalMs: keep } = this.liveness;
    if (keep > 0 && now - this.lastSentAt >= keep && this.socket.writableLength === 0) this.sendKeepalive();
    // A late check means the event loop was blocked: data may be waiting in the kernel, unread.
    if (late || dead <= 0 || now - this.lastReceivedAt < dead) return;
    this.destroy(
      new ConnectionClosedError({
        address: this.remoteAddress,
        reason: `nothing received for ${Math.round(now - this.lastReceivedAt)} ms (liveness timeout ${dead} ms)`,
      }),
    );
  };

  private sendKeepalive(): void {
    if (!this.isOpen) return;
    this.counters.keepalivesOut++;
    this.writeFrame(this.encode(KEEPALIVE), true);
  }

  /**
   * Runs `hook` on this connection before the application sees it: until {@link FramedConnection.releaseHeld}
   * is called, decoded messages are held for the hook instead of being emitted. Resolves with what the
   * hook resolved with; rejects (and closes the connection) if it rejects or times out.
   */
  async runHandshake(hook: Handshake, role: 'client' | 'server'): Promise<unknown> {
    this.held ??= [];
    const timer = setTimeout(
      () =>
        this.destroy(
          new TimeoutError({
            timeoutMs: this.config.handshakeTimeoutMs,
            operation: `the handshake with ${this.remoteAddress}`,
          }),
        ),
      this.config.handshakeTimeoutMs,
    );
    timer.unref?.();
    // A frame that cannot be decoded before the handshake completed (garbage from a stranger): no hook can
    // make sense of it, and the application's own protocolError handling starts only after the handshake.
    // Refuse at once with an error reply (as a stranger's oversized frame), instead of holding the
    // connection until handshakeTimeoutMs.
    const onProtocolError = (e: PaxkvError) => {
      if (e.code === 'TRUNCATED_FRAME' || this.refusing || !this.isOpen) return;
      this.refuse({ type: 'error', ...errorToWire(e, null) }, e);
    };
    this.on('protocolError', onProtocolError);
    const next = async (consume: boolean): Promise<unknown> => {
      for (;;) {
        const q = this.held;
        if (q && q.length > 0) return consume ? q.shift() : q[0];
        if (this.closed || this.socket.destroyed) throw this.closedError();
        await new Promise<void>((r) => this.heldWaiters.push(r));
      }
    };
    const channel: HandshakeChannel = {
      role,
      remoteAddress: this.remoteAddress,
      send: (m) => this.send(m),
      receive: () => next(true),
      peek: () => next(false),
    };
    try {
      this.handshakeValue = await hook(channel);
      if (!this.isOpen) throw this.closedError();
      return this.handshakeValue;
    } catch (e) {
      this.destroy(
        isPaxkvError(e) ? e : new InternalError({ reason: 'the handshake hook failed' }, { cause: e }),
      );
      throw e;
    } finally {
      clearTimeout(timer);
      this.off('protocolError', onProtocolError);
    }
  }

  /** Ends the hold of {@link FramedConnection.runHandshake}: emits the held messages, then delivers directly. */
  releaseHeld(): void {
    const q = this.held;
    this.held = undefined;
    if (!q) return;
    for (const m of q) {
      if (this.closed) return;
      this.safeEmit('message', m);
    }
  }

  private wakeHeldWaiters(): void {
    for (const w of this.heldWaiters.splice(0)) w();
  }

  /** Bytes queued for sending and not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  /** True if a frame of `size` bytes would be accepted by {@link FramedConnection.send} now. */
  canSend(size = 1): boolean {
    if (!this.isOpen || this.pending.length > 0) return false;
    const queued = this.socket.writableLength;
    return queued === 0 || queued + size <= this.config.highWaterMark;
  }

  /**
   * Encodes and queues one message. Returns true if it was queued, false if it was refused because
   * the connection is closed or the outgoing buffer is at the high-water mark (then nothing was
   * queued; wait for `drain`, or use {@link FramedConnection.write}). With `onBackpressure:
   * 'disconnect'` a refusal also closes the connection with a {@link BackpressureError}.
   * @throws EncodeError / FrameTooLargeError if the message itself cannot be sent (a caller bug).
   */
  send(message: unknown): boolean {
    if (!this.isOpen) return false;
    const frame = this.encode(message);
    if (this.canSend(frame.length)) {
      this.writeFrame(frame);
      return true;
    }
    this.pressured = true;
    this.counters.refused++;
    if (this.config.onBackpressure === 'disconnect') {
      this.destroy(
        new BackpressureError({
          bufferedBytes: this.bufferedBytes,
          highWaterMark: this.config.highWaterMark,
        }),
      );
    }
    return false;
  }

  /**
   * Encodes and queues one message, waiting for room if the buffer is at its high-water mark.
   * Writes complete in call order. Rejects with {@link ConnectionClosedError} if the connection is
   * or becomes closed, with {@link BackpressureError} if `maxPendingWrites` writes already wait or
   * no room appears within `drainTimeoutMs`, and with EncodeError / FrameTooLargeError for a
   * message that cannot be sent.
   */
  write(message: unknown): Promise<void> {
    if (!this.isOpen) return Promise.reject(this.closedError());
    let frame: Uint8Array;
    try {
      frame = this.encode(message);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.canSend(frame.length)) {
      this.writeFrame(frame);
      return Promise.resolve();
    }
    if (this.pending.length >= this.config.maxPendingWrites) {
      this.counters.refused++;
      return Promise.reject(
        new BackpressureError({
          bufferedBytes: this.bufferedBytes,
          highWaterMark: this.config.highWaterMark,
        }),
      );
    }
    this.pressured = true;
    return new Promise<void>((resolve, reject) => {
      const entry: PendingWrite = { frame, resolve, reject, timer: undefined };
      entry.timer = setTimeout(() => {
        const i = this.pending.indexOf(entry);
        if (i >= 0) this.pending.splice(i, 1);
        this.counters.refused++;
        reject(
          new BackpressureError({
            bufferedBytes: this.bufferedBytes,
            highWaterMark: this.config.highWaterMark,
          }),
        );
      }, this.config.drainTimeoutMs);
      entry.timer.unref?.();
      this.pending.push(entry);
    });
  }

  /** Stops reading from the socket (the peer then sees backpressure). */
  pause(): void {
    this.socket.pause();
  }

  /** Resumes reading after {@link FramedConnection.pause}. */
  resume(): void {
    this.socket.resume();
  }

  /** Closes gracefully: queued frames are flushed, then the connection ends. */
  close(): void {
    if (this.closed) return;
    this.socket.end();
  }

  /** Closes at once, dropping queued frames. `reason` is reported by the `close` event. */
  destroy(reason?: PaxkvError): void {
    if (reason) this.closeReason ??= reason;
    this.socket.destroy();
  }

  private encode(message: unknown): Uint8Array {
    return encodeFrame(message, {
      maxFrameBytes: this.config.maxFrameBytes,
      ...(this.codec ? { codec: this.codec } : {}),
    });
  }

  /**
   * Writes one frame. Frames written in the same tick are corked and leave in one `writev` system
   * call at the end of the tick (a batch of Paxos messages costs one syscall, not one per frame).
   */
  private writeFrame(frame: Uint8Array, keepalive = false): void {
    const intro = this.introduction;
    if (intro && !keepalive) {
      this.introduction = undefined;
      const above = intro.aboveBytes ?? DEFAULT_UNIDENTIFIED_MAX_FRAME_BYTES;
      if (frame.length - FRAME_HEADER_BYTES > above) this.writeFrame(this.encode(intro.message));
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.lastSentAt = performance.now();
    if (!keepalive) this.counters.framesOut++;
    this.counters.bytesOut += frame.length;
    this.socket.write(frame, this.onFlushed);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /** Called as each frame reaches the kernel: admits waiting writes and signals `drain`. */
  private readonly onFlushed = (): void => {
    if (this.closed) return;
    while (this.pending.length > 0) {
      const next = this.pending[0]!;
      const queued = this.socket.writableLength;
      if (queued !== 0 && queued + next.frame.length > this.config.highWaterMark) return;
      this.pending.shift();
      if (next.timer) clearTimeout(next.timer);
      this.writeFrame(next.frame);
      next.resolve();
    }
    if (this.pressured && this.socket.writableLength <= this.config.highWaterMark / 2) {
      this.pressured = false;
      this.safeEmit('drain');
    }
  };

  /** Milliseconds since the last byte arrived (or since the connection opened). */
  get silentForMs(): number {
    return performance.now() - this.lastReceivedAt;
  }

  private onData(chunk: Buffer): void {
    this.counters.bytesIn += chunk.length;
    this.lastReceivedAt = performance.now();
    this.decoder.feed(chunk, this.onFrame);
    if (!this.closed) this.inboundBudget?.update(this, this.decoder.bufferedBytes);
  }

  /** One frame's outcome, before the next frame's header is read (so a listener may change the limits). */
  private readonly onFrame = (r: FrameResult<unknown>): boolean => {
    if (this.closed || this.socket.destroyed || this.refusing) return false;
    if (r.ok) {
      if (r.value === KEEPALIVE) {
        this.counters.keepalivesIn++;
        return true;
      }
      this.counters.framesIn++;
      if (this.held) {
        this.held.push(r.value);
        this.wakeHeldWaiters();
      } else {
        this.safeEmit('message', r.value);
      }
      return true;
    }
    this.counters.protocolErrors++;
    this.safeEmit('protocolError', r.error);
    if (r.error instanceof FrameTooLargeError) this.rejectOversized(r.error);
    return true;
  };

  /**
   * The inbound limits in force: the largest frame accepted and the most msgpack values per frame (0: no
   * limit). They start from the config (`maxFrameBytes`, `maxItemsPerFrame`); a server starts a connection
   * it does not know yet with smaller ones (see `TransportServer` `unidentifiedMaxFrameBytes`).
   */
  get inboundLimits(): Required<InboundFrameLimits> {
    return this.decoder.limits;
  }

  /**
   * Changes the inbound limits from the next frame on (frames already received are not affected). A
   * server raises them once a connection proved to be a client or a peer (see `TransportServer.identify`).
   * @throws ConfigError / RangeError for a limit out of range.
   */
  setInboundLimits(limits: InboundFrameLimits): void {
    this.decoder.setLimits(limits);
  }

  private rejectOversized(error: FrameTooLargeError): void {
    this.closeReason ??= error;
    if (this.config.replyFrameTooLarge)
      this.refuse({ type: 'error', id: null, code: error.code, message: error.message }, error);
    else this.socket.destroy();
  }

  /**
   * Stops reading at once (nothing more the peer sends is read into memory), sends `reply` (an `error`
   * saying why), closes, and destroys the connection if the peer has not closed within a second. What a
   * server does to a connection that sent a frame it refused: the rest of that frame is never read.
   * `reason` is reported by the `close` event.
   */
  refuse(reply: unknown, reason?: PaxkvError): void {
    if (reason) this.closeReason ??= reason;
    this.refusing = true;
    this.socket.pause();
    if (this.socket.destroyed) return;
    try {
      this.socket.end(this.encode(reply));
      // Do not wait forever for a peer that does not read.
      setTimeout(() => this.socket.destroy(), 1_000).unref();
    } catch {
      this.socket.destroy();
    }
  }

  private onEnd(): void {
    const truncated = this.decoder.end();
    if (truncated) {
      this.closeReason ??= truncated;
      this.counters.protocolErrors++;
      this.safeEmit('protocolError', truncated);
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.inboundBudget?.update(this, 0);
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.livenessTimer = undefined;
    this.wakeHeldWaiters();
    // The error (a stack trace each) only when a write waits for it: a burst of 10 000 idle connections
    // closing at once spent ~30 % of its event-loop time building errors nobody read (bench:hostile
    // --attack idle).
    if (this.pending.length > 0) {
      const err = this.closedError();
      for (const p of this.pending.splice(0)) {
        if (p.timer) clearTimeout(p.timer);
        p.reject(err);
      }
    }
    this.safeEmit('close', this.closeReason);
    this.removeAllListeners();
  }

  private closedError(): ConnectionClosedError {
    const r = this.closeReason;
    return r instanceof ConnectionClosedError
      ? r
      : new ConnectionClosedError({ address: this.remoteAddress, ...(r ? { reason: r.message } : {}) });
  }

  private safeEmit<K extends keyof FramedConnectionEvents>(
    event: K,
    ...args: FramedConnectionEvents[K]
  ): void {
    try {
      (this.emit as (e: K, ...a: FramedConnectionEvents[K]) => boolean)(event, ...args);
    } catch (e) {
      this.logger?.error(
        { err: e, event, peer: this.remoteAddress },
        'connection listener threw; closing the connection',
      );
      const reason = isPaxkvError(e)
        ? e
        : new InternalError({ reason: `a '${event}' listener threw` }, { cause: e });
      if (event !== 'close') this.destroy(reason);
    }
  }
}
