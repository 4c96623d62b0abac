import { expect } from 'vitest';
import type { CasOutcome, Target } from './target.js';

/**
 * Test support: checks the {@link Target} contract on a fresh key of a live system (get of a missing
 * key, cas from absent and from a value, refused cas with the current value, put then get).
 */
export async function expectTargetContract(target: Target): Promise<void> {
  const key = `t-${Date.now()}`;
  expect(await target.get(key)).toBeNull();
  expect(await target.cas(key, 'nope', 'x')).toEqual({ applied: false, current: null });
  expect(await target.cas(key, null, 'first')).toEqual({ applied: true });
  expect(await target.cas(key, null, 'again')).toEqual({ applied: false, current: 'first' });
  expect(await target.cas(key, 'first', 'second')).toEqual({ applied: true });
  await target.put(key, 'third');
  expect(await target.get(key)).toBe('third');
}

/**
 * Test support only (not part of the benchmark): an in-process single-copy store used as the
 * reference when testing the load generator and the workloads. It can be told to fail or to delay.
 */
export class InMemoryTarget implements Target {
  readonly system = 'memory';
  readonly data = new Map<string, string>();
  calls = 0;
  /** When set, every call rejects with this error. */
  failWith: Error | undefined;
  /** Milliseconds every call waits before answering. */
  delayMs = 0;

  private async enter(): Promise<void> {
    this.calls += 1;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failWith !== undefined) throw this.failWith;
  }

  async put(key: string, value: string): Promise<void> {
    await this.enter();
    this.data.set(key, value);
  }
  async get(key: string): Promise<string | null> {
    await this.enter();
    return this.data.get(key) ?? null;
  }
  async cas(key: string, expected: string | null, value: string): Promise<CasOutcome> {
    await this.enter();
    const current = this.data.get(key) ?? null;
    if (current !== expected) return { applied: false, current };
    this.data.set(key, value);
    return { applied: true };
  }
  async txn(keyA: string, keyB: string, valueA: string, valueB: string): Promise<void> {
    await this.enter();
    this.data.set(keyA, valueA);
    this.data.set(keyB, valueB);
  }
  async range(start: string, end: string, limit: number): Promise<number> {
    await this.enter();
    return [...this.data.keys()].filter((k) => k >= start && k < end).slice(0, limit).length;
  }
  async close(): Promise<void> {}
}
