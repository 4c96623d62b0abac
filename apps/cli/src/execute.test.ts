import { describe, expect, it } from 'vitest';
import { parseLine } from './commands.js';
import { type CliValue, EXIT, execute, type KvClientPort } from './execute.js';

/** A single-copy key-value map with the client's result shapes: the reference the CLI output is checked against. */
class MapClient implements KvClientPort {
  readonly data = new Map<string, CliValue>();
  async get(key: string) {
    return this.data.get(key) ?? null;
  }
  async put(key: string, value: CliValue) {
    const created = !this.data.has(key);
    this.data.set(key, value);
    return { created };
  }
  async cas(key: string, expected: CliValue | null, value: CliValue) {
    const current = this.data.get(key) ?? null;
    if (expected === null) {
      if (current !== null) return { outcome: 'mismatch' as const, current };
    } else if (current === null) {
      return { outcome: 'not-found' as const, current };
    } else if (current !== expected) {
      return { outcome: 'mismatch' as const, current };
    }
    this.data.set(key, value);
    return { outcome: 'applied' as const, current: value };
  }
  async delete(key: string) {
    return { existed: this.data.delete(key) };
  }
}

const noStatus = async () => {
  throw new Error('status not available');
};

async function run(client: KvClientPort, line: string) {
  const command = parseLine(line);
  if (!command) throw new Error('empty');
  return execute(command, client, noStatus);
}

describe('execute', () => {
  it('maps results to output and exit codes', async () => {
    const c = new MapClient();
    const miss = await run(c, 'get k');
    expect(miss.exitCode).toBe(EXIT.notFound);
    expect(miss.stdout).toBe('');
    expect(miss.json).toMatchObject({ found: false, value: null });

    expect((await run(c, 'put k v1')).stdout).toBe('OK (created)');
    expect((await run(c, 'put k v2')).stdout).toBe('OK (updated)');
    const hit = await run(c, 'get k');
    expect(hit).toMatchObject({ exitCode: EXIT.ok, stdout: 'v2' });

    const mismatch = await run(c, 'cas k v1 v3');
    expect(mismatch.exitCode).toBe(EXIT.notFound);
    expect(mismatch.stderr).toContain('v2');
    expect(mismatch.json).toMatchObject({ outcome: 'mismatch', current: 'v2' });
    expect((await run(c, 'cas k v2 v3')).exitCode).toBe(EXIT.ok);
    expect((await run(c, 'cas k --absent v4')).exitCode).toBe(EXIT.notFound);
    expect((await run(c, 'cas nokey x y')).json).toMatchObject({ outcome: 'not-found' });
    expect((await run(c, 'cas new --absent y')).exitCode).toBe(EXIT.ok);

    expect((await run(c, 'delete k')).exitCode).toBe(EXIT.ok);
    expect((await run(c, 'delete k')).exitCode).toBe(EXIT.notFound);
  });

  it('turns a thrown error into exit code 2 with its code and message', async () => {
    class FailingClient extends MapClient {
      override async get(): Promise<CliValue | null> {
        throw Object.assign(new Error('partition 3 has no leader yet; retry after a backoff'), {
          code: 'NO_LEADER',
        });
      }
    }
    const failing = new FailingClient();
    const out = await run(failing, 'get k');
    expect(out.exitCode).toBe(EXIT.error);
    expect(out.stderr).toContain('NO_LEADER');
    expect(out.json).toMatchObject({ ok: false, error: { code: 'NO_LEADER' } });
    const status = await run(failing, 'status');
    expect(status.exitCode).toBe(EXIT.error);
  });

  it('renders byte values as base64 in JSON', async () => {
    const c = new MapClient();
    c.data.set('b', new Uint8Array([1, 2, 255]));
    const out = await run(c, 'get b');
    expect(out.json).toMatchObject({ value: { base64: 'AQL/' } });
  });
});
