import { Writable } from 'node:stream';
import { type Logger, NotLeaderError, silentLogger } from '@paxkv/common';
import { describe, expect, it } from 'vitest';
import { createLogger } from './pino-logger.js';

function sink() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('writes JSON lines with name, level label, ISO time, base fields and serialised errors', () => {
    const { lines, stream } = sink();
    const log = createLogger({ name: 'test', level: 'debug', destination: stream, base: { node: 3 } });
    log.debug({ key: 'k' }, 'hello');
    log.error({ err: new NotLeaderError({ leaderHint: { node: 2, address: 'h:1' } }) }, 'failed');
    log.trace('not shown');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'debug', name: 'test', node: 3, key: 'k', msg: 'hello' });
    expect(typeof lines[0]!.time).toBe('string');
    expect(lines[1]).toMatchObject({ level: 'error', err: { type: 'NotLeaderError', code: 'NOT_LEADER' } });
  });
  it('redacts configured paths', () => {
    const { lines, stream } = sink();
    createLogger({ destination: stream, redact: ['secret'] }).info({ secret: 'x' }, 'm');
    expect(lines[0]!.secret).toBe('[Redacted]');
  });
  it("fits @paxkv/common's Logger port, as does its silent logger", () => {
    const { lines, stream } = sink();
    const port: Logger = createLogger({ destination: stream });
    port.warn({ a: 1 }, 'through the port');
    silentLogger().error({ a: 2 }, 'dropped');
    expect(lines).toEqual([expect.objectContaining({ level: 'warn', a: 1, msg: 'through the port' })]);
  });
});
