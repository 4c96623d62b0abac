/**
 * The client's connection port and the per-server channel that multiplexes many requests over one
 * connection (pipelining by request `id`).
 * @module
 */
import { type ClientRequest, PaxkvError, parseServerResponse, type ServerResponse } from '@paxkv/common';
import { plainKvReply } from './reply-check.js';

/** Callbacks a {@link ConnectionFactory} calls for one connection. */
export interface ConnectionEvents {
  /** The connection is open (again): messages sent from now on are delivered in order. */
  onOpen(): void;
  /** A decoded message arrived from the server (not validated yet; the channel validates it). */
  onMessage(message: unknown): void;
  /**
   * The connection broke, or an attempt to open it failed. Requests in flight on it are lost (their
   * outcome is unknown). The connection keeps reconnecting and calls `onOpen` when it is back.
   */
  onClose(reason?: Error): void;
}

/** One connection to one server, as the client needs it. */
export interface ClientConnection {
  /** True while the connection is open. */
  readonly isOpen: boolean;
  /**
   * Queues one message. Returns false if it was not queued (not open, or the outgoing buffer is at
   * its high-water mark): the message was then certainly not sent. Must not throw on a closed
   * connection.
   */
  send(message: ClientRequest): boolean;
  /** Closes the connection for good (no reconnection); `onClose` may follow. */
  close(): void;
}

/**
 * Opens a connection to `address` (`host:port`) and reports its life through `events`. The
 * connection must reconnect by itself (with backoff) after a break until `close()` is called, as
 * `@paxkv/common`'s reconnecting TCP transport does (the default). Tests inject their own.
 */
export type ConnectionFactory = (address: string, events: ConnectionEvents) => ClientConnection;

/** What became of one request sent on a channel. */
export type AttemptOutcome =
  /** The server answered (a validated response whose `id` matches). */
  | { readonly kind: 'reply'; readonly message: ServerResponse }
  /** The request was sent but no answer came in time: its outcome is unknown. */
  | { readonly kind: 'timeout' }
  /** The request was sent, then the connection broke: its outcome is unknown. */
  | { readonly kind: 'closed' }
  /**
   * The request was never sent: the connection was not open in time (`busy: false`), or it is open
   * but its outgoing buffer is full (`busy: true`: the server reads slower than we write).
   */
  | {
      readonly kind: 'not-sent';
      readonly reason: string;
      readonly busy?: boolean;
      /** Why the connection is down when that cannot be fixed by retrying (a TLS failure). */
      readonly error?: PaxkvError;
    };

interface Pending {
  readonly resolve: (o: AttemptOutcome) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * One server's connection plus the table of requests in flight on it. Replies are matched to
 * requests by `id`, so any number of requests may be in flight at once, answered in any order.
 */
export class Channel {
  /** The server's address. */
  readonly address: string;
  readonly #connection: ClientConnection;
  readonly #pending = new Map<number, Pending>();
  /** Open streams (watches) by request id: every message with that id goes to the handler; null on close. */
  readonly #streams = new Map<number, (message: ServerResponse | null) => void>();
  #openWaiters = new Set<(open: boolean) => void>();
  #closedForGood = false;
  /** True after a close (or failed connect) until the next open: sends fail fast meanwhile. */
  #down = false;
  /** Why the last connection attempt failed, when retrying cannot fix it (a TLS failure). */
  #lastFailure: PaxkvError | undefined;
  /** Replies that failed validation or matched no request (for diagnostics). */
  strayReplies = 0;

  constructor(address: string, factory: ConnectionFactory) {
    this.address = address;
    this.#connection = factory(address, {
      onOpen: () => {
        this.#down = false;
        this.#wakeOpenWaiters(true);
      },
      onMessage: (m) => this.#onMessage(m),
      onClose: (reason) => {
        this.#lastFailure = isPermanentConnectionFailure(reason) ? reason : undefined;
        this.#onClose();
      },
    });
  }

  /** True if the connection is open now. */
  get isOpen(): boolean {
    return this.#connection.isOpen;
  }

  /** Number of requests waiting for an answer on this channel. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** True if no request is waiting for an answer or for the connection to open: closing loses nothing. */
  get idle(): boolean {
    return this.#pending.size === 0 && this.#openWaiters.size === 0 && this.#streams.size === 0;
  }

  /**
   * Opens a stream: sends `request` and hands every later message carrying its id to `onMessage`, until
   * {@link Channel.endStream} or the connection closes (then `onMessage(null)` once). Returns false if
   * the request could not be sent (not connected, or at the high-water mark); nothing is registered then.
   */
  openStream(request: ClientRequest, onMessage: (message: ServerResponse | null) => void): boolean {
    if (this.#closedForGood || !this.#connection.isOpen) return false;
    this.#streams.set(request.id, onMessage);
    let sent = false;
    try {
      sent = this.#connection.send(request);
    } catch {
      sent = false;
    }
    if (!sent) this.#streams.delete(request.id);
    return sent;
  }

  /** Stops routing messages of stream `id`; sends `cancel` (if given) to the server. */
  endStream(id: number, cancel?: ClientRequest): void {
    if (!this.#streams.delete(id) || !cancel || !this.#connection.isOpen) return;
    try {
      this.#connection.send(cancel);
    } catch {
      // The connection is failing: the server ends the stream when it closes.
    }
  }

  /** Resolves true once the connection is open, false if it did not open within `timeoutMs`. */
  async whenOpen(timeoutMs: number): Promise<boolean> {
    if (this.#connection.isOpen) return true;
    if (this.#closedForGood) return false;
    return this.#waitOpen(timeoutMs);
  }

  /**
   * Sends `request` and resolves with its outcome: the reply, a timeout after `timeoutMs`, a broken
   * connection, or "not sent" if the connection did not open within `timeoutMs`. Never rejects.
   */
  request(request: ClientRequest, timeoutMs: number): Promise<AttemptOutcome> {
    // An open connection sends at once (no async wrapper: its promise hops cost every call).
    if (!this.#closedForGood && this.#connection.isOpen) return this.#sendNow(request, timeoutMs);
    return this.#openAndSend(request, timeoutMs);
  }

  async #openAndSend(request: ClientRequest, timeoutMs: number): Promise<AttemptOutcome> {
    const start = performance.now();
    if (this.#closedForGood) return { kind: 'not-sent', reason: 'client closed' };
    if (!this.#connection.isOpen) {
      // A server known to be down fails fast so the caller can try another replica at once; the
      // connection keeps reconnecting in the background.
      const failure = this.#lastFailure;
      const because = failure ? { reason: `${this.address}: ${failure.message}`, error: failure } : undefined;
      if (this.#down) return { kind: 'not-sent', reason: `${this.address} is unreachable`, ...because };
      const open = await this.#waitOpen(timeoutMs);
      if (!open) {
        const late = this.#lastFailure;
        return late
          ? { kind: 'not-sent', reason: `${this.address}: ${late.message}`, error: late }
          : { kind: 'not-sent', reason: `could not connect to ${this.address}` };
      }
    }
    return this.#sendNow(request, Math.max(1, timeoutMs - (performance.now() - start)));
  }

  #sendNow(request: ClientRequest, remaining: number): Promise<AttemptOutcome> {
    return new Promise<AttemptOutcome>((resolve) => {
      const id = request.id;
      const timer = setTimeout(() => {
        // Decided after this turn's I/O: when this process was stalled (a busy or overloaded machine),
        // the overdue timer runs before the poll phase reads a reply that arrived meanwhile; calling
        // that a timeout would retry a request that was answered.
        setImmediate(() => {
          if (this.#pending.delete(id)) resolve({ kind: 'timeout' });
        });
      }, remaining);
      this.#pending.set(id, { resolve, timer });
      let sent = false;
      try {
        sent = this.#connection.send(request);
      } catch (e) {
        sent = false;
        this.#settle(id, { kind: 'not-sent', reason: e instanceof Error ? e.message : String(e) });
        return;
      }
      if (!sent) {
        const busy = this.#connection.isOpen;
        this.#settle(id, {
          kind: 'not-sent',
          reason: busy
            ? `the connection to ${this.address} is at its high-water mark (the server reads slower than we send)`
            : `${this.address} is not connected`,
          busy,
        });
      }
    });
  }

  /** Closes the connection for good; requests in flight resolve as `closed`. */
  close(): void {
    this.#closedForGood = true;
    this.#connection.close();
    this.#onClose();
  }

  #settle(id: number, outcome: AttemptOutcome): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(outcome);
  }

  #onMessage(raw: unknown): void {
    // The hot replies (a get or put result) are checked by hand, everything else by the schema.
    let message: ServerResponse | undefined = plainKvReply(raw);
    if (message === undefined) {
      const parsed = parseServerResponse(raw);
      if (parsed.ok) message = parsed.value;
    }
    if (message === undefined || message.id === null) {
      // Unattributable (a reply we cannot read, or an error about a frame we sent): the requests it
      // concerns time out or fail with the connection. Nothing else to do here.
      this.strayReplies++;
      return;
    }
    const stream = this.#streams.get(message.id);
    if (stream) {
      stream(message);
      return;
    }
    if (!this.#pending.has(message.id)) {
      this.strayReplies++;
      return;
    }
    this.#settle(message.id, { kind: 'reply', message });
  }

  #onClose(): void {
    this.#down = true;
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) s(null);
    for (const id of [...this.#pending.keys()]) this.#settle(id, { kind: 'closed' });
    this.#wakeOpenWaiters(false);
  }

  #wakeOpenWaiters(open: boolean): void {
    const waiters = this.#openWaiters;
    this.#openWaiters = new Set();
    for (const w of waiters) w(open);
  }

  #waitOpen(timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const done = (open: boolean) => {
        clearTimeout(timer);
        this.#openWaiters.delete(done);
        resolve(open);
      };
      const timer = setTimeout(() => done(this.#connection.isOpen), timeoutMs);
      this.#openWaiters.add(done);
    });
  }
}

/**
 * Whether a connection's close reason means retrying that server cannot help (a TLS failure, refused
 * credentials). Bytes that are not paxkv frames (`FRAME_TOO_LARGE`, `DECODE_FAILED`: another service on that
 * port, say an HTTP server that took the port of a server that died) only break this connection: the
 * request goes to another replica or a later dial, like after any broken connection.
 */
function isPermanentConnectionFailure(reason: unknown): reason is PaxkvError {
  if (!(reason instanceof PaxkvError) || reason.retryable) return false;
  return reason.code !== 'FRAME_TOO_LARGE' && reason.code !== 'DECODE_FAILED';
}
