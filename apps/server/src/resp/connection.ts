/**
 * One RESP client connection: bytes in, commands through the request path, replies out in request order.
 *
 * Pipelined commands run concurrently, except that a command waits for every earlier command of the
 * connection that touches one of its keys (and a barrier command such as `DBSIZE` for all earlier ones):
 * what one connection does to one key happens in the order it sent it, as in Redis; commands on
 * different keys may take effect in any order, as across the slots of a Redis Cluster. Replies always
 * leave in request order.
 *
 * Bounded: at most `maxPipeline` commands read and not yet answered, and reading stops while more than
 * `outputHighWaterBytes` of replies wait for the client to read them (TCP backpressure, never an
 * unbounded queue). A command left half-sent for `partialCommandTimeoutMs` closes the connection.
 * @module
 */
import type { Socket } from 'node:net';
import { SessionPool } from '@paxkv/client';
import type { KvOp, KvResult } from '@paxkv/common';
import type { RespBackend } from './backend.js';
import { upper } from './command-context.js';
import {
  type CommandContext,
  type CommandSpec,
  commandKeys,
  errorReply,
  lookupCommand,
  queueCommand,
  type RespClientState,
  runsInsideMulti,
} from './commands.js';
import { encodeReply, R, type RespValue, type RespVersion } from './encoder.js';
import type { RespLimits } from './limits.js';
import { RespProtocolError, RespRequestParser } from './parser.js';

interface Slot {
  reply: RespValue | null;
  proto: RespVersion;
  /** Close the connection once this reply is written (QUIT, protocol error). */
  close: boolean;
}

/** What a connection needs from its server. */
export interface RespConnectionDeps {
  readonly backend: RespBackend;
  readonly limits: RespLimits;
  readonly server: CommandContext['server'];
  /** Called once when the socket closed. */
  readonly onClose: () => void;
  /** Counts protocol errors and timeouts (for metrics and logs). */
  readonly onBadInput: (why: string) => void;
  /**
   * Test-only: `noKeyOrdering` breaks the per-key order rule (every command runs at once), so that a
   * test can show the rule is what keeps one connection's commands on a key in order. Never set it.
   */
  readonly unsafeMutation?: 'noKeyOrdering';
}

/** See the module comment. */
export class RespConnection {
  private readonly parser: RespRequestParser;
  private readonly queue: Slot[] = [];
  /** Last pending command per key (exact bytes). */
  private readonly tails = new Map<string, Promise<void>>();
  private readonly inflight = new Set<Promise<void>>();
  private barrier: Promise<void> | null = null;
  private readonly client: RespClientState;
  private readonly ctx: CommandContext;
  private readonly sessions: SessionPool;
  private flushScheduled = false;
  /** No more commands are read (QUIT or protocol error queued). */
  private ending = false;
  private closed = false;
  private pausedForOutput = false;
  /**
   * An `AUTH` or `HELLO ... AUTH` is running: nothing after it is read until it finished, so the commands
   * pipelined behind a login run as the user it logs in (and in the protocol `HELLO` chose), as in Redis.
   */
  private loggingIn = false;
  private partialTimer: NodeJS.Timeout | null = null;
  /** Chunks read so far (tells the half-sent command timer whether bytes came after it was armed). */
  private chunksIn = 0;

  constructor(
    private readonly socket: Socket,
    id: number,
    private readonly deps: RespConnectionDeps,
  ) {
    this.parser = new RespRequestParser(deps.limits);
    this.client = {
      id,
      name: null,
      proto: 2,
      quitting: false,
      multi: null,
      watched: new Map(),
      principal: null,
      cursors: new Map(),
      remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
    };
    this.sessions = new SessionPool(`${deps.backend.sessionPrefix}.${id.toString(36)}`);
    this.ctx = {
      backend: deps.backend,
      client: this.client,
      server: deps.server,
      run: (op) => this.run(op),
    };
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      if (this.pausedForOutput) {
        this.pausedForOutput = false;
        this.pump();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClosed());
  }

  /** Closes the connection at once (server stopping). */
  destroy(): void {
    this.socket.destroy();
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearPartialTimer();
    this.deps.onClose();
  }

  private onData(chunk: Buffer): void {
    if (this.ending) return;
    this.chunksIn++;
    this.clearPartialTimer();
    this.parser.push(chunk);
    this.pump();
  }

  /** Parses and dispatches the commands received, as far as the pipeline bound allows. */
  private pump(): void {
    while (
      !this.ending &&
      !this.closed &&
      !this.loggingIn &&
      this.queue.length < this.deps.limits.maxPipeline
    ) {
      const next = this.parser.next();
      if (next === null) break;
      if (next instanceof RespProtocolError) {
        this.deps.onBadInput('protocol');
        this.endWith(R.error(`ERR ${next.message}`));
        break;
      }
      this.dispatch(next);
    }
    this.updateFlow();
  }

  /** Pauses reading while the pipeline or the output is full; arms the half-sent command timer. */
  private updateFlow(): void {
    if (this.closed) return;
    const full = this.queue.length >= this.deps.limits.maxPipeline || this.pausedForOutput || this.loggingIn;
    if (full || this.ending) this.socket.pause();
    else this.socket.resume();
    const timeout = this.deps.limits.partialCommandTimeoutMs;
    if (!full && !this.ending && timeout > 0 && this.parser.partial && this.partialTimer === null) {
      const chunksAtArm = this.chunksIn;
      this.partialTimer = setTimeout(() => {
        this.partialTimer = null;
        // Decided after the loop's next poll phase: when the loop was blocked, the timer fires before
        // the bytes that arrived meanwhile are read, and an honest client would be cut off.
        setImmediate(() => {
          if (this.ending || this.closed || !this.parser.partial || this.chunksIn !== chunksAtArm) return;
          this.deps.onBadInput('partial-timeout');
          this.endWith(
            R.error(
              `ERR Protocol error: a command stayed incomplete for ${timeout} ms; closing the connection`,
            ),
          );
        });
      }, timeout);
      this.partialTimer.unref?.();
    }
  }

  private clearPartialTimer(): void {
    if (this.partialTimer) clearTimeout(this.partialTimer);
    this.partialTimer = null;
  }

  /** Queues a final reply and stops reading: the connection closes once it is written. */
  private endWith(reply: RespValue): void {
    this.ending = true;
    this.clearPartialTimer();
    this.queue.push({ reply, proto: this.client.proto, close: true });
    this.scheduleFlush();
  }

  private dispatch(args: Buffer[]): void {
    const slot: Slot = { reply: null, proto: this.client.proto, close: false };
    this.queue.push(slot);
    const spec = lookupCommand(args);
    if (this.client.multi && (spec instanceof Error || !runsInsideMulti(spec.name))) {
      // Inside MULTI: queued (or refused) at once, executed by EXEC as one transaction.
      this.complete(slot, queueCommand(this.ctx, spec, args));
    } else if (!(spec instanceof Error)) {
      if (spec.name === 'auth' || (spec.name === 'hello' && args.some((a) => upper(a) === 'AUTH')))
        this.loggingIn = true;
      this.schedule(spec, args, slot);
    } else {
      this.complete(slot, errorReply(spec));
    }
    // A command that changes the connection (HELLO, QUIT) ran synchronously: its reply uses the new state.
    slot.proto = this.client.proto;
    if (this.client.quitting) {
      slot.close = true;
      this.ending = true;
    }
  }

  /** Runs `spec` once the earlier commands it depends on finished. */
  private schedule(spec: CommandSpec, args: Buffer[], slot: Slot): void {
    const keys = spec.barrier ? [] : commandKeys(spec, args);
    const waits: Promise<void>[] = [];
    if (spec.barrier) waits.push(...this.inflight);
    else if (keys.length > 0) {
      // Commands without keys (connection state: HELLO, MULTI, CLIENT...) run at once, in order.
      if (this.barrier) waits.push(this.barrier);
      for (const k of keys) {
        const t = this.tails.get(k);
        if (t) waits.push(t);
      }
    }
    const prepared = spec.prepare?.(this.ctx, args);
    const run = (): Promise<void> => this.execute(spec, args, slot, prepared);
    if (this.deps.unsafeMutation === 'noKeyOrdering') waits.length = 0;
    const done = waits.length === 0 ? run() : Promise.all(waits).then(run);
    this.inflight.add(done);
    for (const k of keys) this.tails.set(k, done);
    if (spec.barrier) this.barrier = done;
    void done.then(() => {
      this.inflight.delete(done);
      for (const k of keys) if (this.tails.get(k) === done) this.tails.delete(k);
      if (this.barrier === done) this.barrier = null;
    });
  }

  /** Runs a command to its reply; never rejects. */
  private async execute(spec: CommandSpec, args: Buffer[], slot: Slot, prepared: unknown): Promise<void> {
    let reply: RespValue;
    try {
      reply = await spec.run(this.ctx, args, prepared);
    } catch (e) {
      reply = errorReply(e);
    }
    // `HELLO ... AUTH` switches the protocol only once its login succeeded: its reply uses the new one.
    if (spec.name === 'hello') slot.proto = this.client.proto;
    this.complete(slot, reply);
    if (this.loggingIn && (spec.name === 'auth' || spec.name === 'hello')) {
      this.loggingIn = false;
      this.pump();
    }
  }

  /** One KV operation through the request path; a write carries a session of this connection. */
  private async run(op: KvOp): Promise<KvResult> {
    const principal = this.client.principal;
    if (op.op === 'get') return this.deps.backend.execute(op, undefined, principal);
    const held = this.sessions.acquire();
    try {
      return await this.deps.backend.execute(op, held.session, principal);
    } finally {
      this.sessions.release(held);
    }
  }

  private complete(slot: Slot, reply: RespValue): void {
    slot.reply = reply;
    if (this.queue[0] === slot) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => this.flush());
  }

  /** Writes the answered prefix of the queue, in order. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    const socket = this.socket;
    let wrote = false;
    let close = false;
    socket.cork();
    while (this.queue.length > 0 && (this.queue[0] as Slot).reply !== null) {
      const slot = this.queue.shift() as Slot;
      for (const b of encodeReply(slot.reply as RespValue, slot.proto)) socket.write(b);
      wrote = true;
      if (slot.close) {
        close = true;
        break;
      }
    }
    socket.uncork();
    if (close) {
      this.queue.length = 0;
      socket.end();
      return;
    }
    if (wrote && socket.writableLength > this.deps.limits.outputHighWaterBytes) this.pausedForOutput = true;
    this.pump();
  }
}
