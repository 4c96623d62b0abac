/**
 * Helpers of the RESP tests: a raw RESP socket that collects reply bytes, and a backend that runs
 * operations on a real `KvStateMachine` in this process (with random delays, so that pipelined commands
 * complete out of order as they do on a cluster).
 */
import { connect, type Socket } from 'node:net';
import {
  DEFAULT_PROTOCOL_LIMITS,
  type KvOp,
  type KvResult,
  type ProtocolLimits,
  type Session,
} from '@paxkv/common';
import { KvStateMachine } from '@paxkv/kvstore';
import type { RespBackend, RespServerFacts } from '../src/resp/backend.js';

/** A backend over one in-process state machine; `maxDelayMs` > 0 delays each operation randomly. */
export class StateMachineBackend implements RespBackend {
  readonly sm = new KvStateMachine();
  readonly limits: ProtocolLimits = DEFAULT_PROTOCOL_LIMITS;
  readonly sessionPrefix = 'resp.test';
  /** Operations applied, in order. */
  readonly applied: KvOp[] = [];
  private next = 0;

  constructor(private readonly maxDelayMs = 0) {}

  async execute(op: KvOp, session: Session | undefined): Promise<KvResult> {
    if (this.maxDelayMs > 0) await new Promise((r) => setTimeout(r, Math.random() * this.maxDelayMs));
    else await new Promise((r) => setImmediate(r));
    const out = this.sm.apply(this.sm.appliedIndex, {
      id: `t${this.next++}`,
      op,
      ...(session ? { session } : {}),
    });
    if (!out.ok) throw out.error;
    this.applied.push(op);
    return out.result;
  }

  facts(): RespServerFacts {
    return { nodeId: 1, address: '127.0.0.1:1', partitions: 1, groups: [], fsync: 'never' };
  }
}

/** A raw TCP connection to a RESP port that collects every byte received. */
export class RawResp {
  private received = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  readonly done: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (b: Buffer) => {
      this.received = Buffer.concat([this.received, b]);
      this.wake();
    });
    this.done = new Promise((r) =>
      socket.on('close', () => {
        this.closed = true;
        this.wake();
        r();
      }),
    );
    socket.on('error', () => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static open(port: number): Promise<RawResp> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new RawResp(s)));
      s.once('error', reject);
    });
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** Everything received so far, as latin1 text. */
  get text(): string {
    return this.received.toString('latin1');
  }

  /** Waits until the received text satisfies `pred` (or the socket closed). */
  async until(pred: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.text)) {
      if (this.closed) break;
      if (Date.now() > deadline) throw new Error(`timed out waiting; received: ${JSON.stringify(this.text)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.text;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Encodes a command as a RESP multibulk array. */
export function respCommand(...args: (string | Buffer)[]): Buffer {
  return Buffer.concat([
    Buffer.from(`*${args.length}\r\n`),
    ...args.flatMap((a) => {
      const b = Buffer.from(a);
      return [Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')];
    }),
  ]);
}
