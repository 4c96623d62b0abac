import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackgroundJsonFile } from './background-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-bgfile-'));
  dirs.push(dir);
  const state = { value: null as unknown, errors: [] as Error[] };
  const file = new BackgroundJsonFile(
    dir,
    'x.json',
    () => state.value,
    (e) => state.errors.push(e),
  );
  const read = () => JSON.parse(readFileSync(join(dir, 'x.json'), 'utf8')) as unknown;
  return { dir, state, file, read };
}

describe('BackgroundJsonFile', () => {
  it('writes the newest value off the event loop, coalescing the requests made meanwhile', async () => {
    const { dir, state, file, read } = setup();
    state.value = { v: 1 };
    file.schedule();
    // Nothing is written synchronously.
    expect(readdirSync(dir).filter((f) => f === 'x.json')).toEqual([]);
    for (let v = 2; v <= 50; v++) {
      state.value = { v };
      file.schedule();
    }
    await file.flushed();
    expect(read()).toEqual({ v: 50 });
    expect(state.errors).toEqual([]);
    // No temp file is left behind.
    expect(readdirSync(dir)).toEqual(['x.json']);
  });

  it('writes nothing while the value is null', async () => {
    const { dir, file } = setup();
    file.schedule();
    await file.flushed();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a synchronous write wins over a background write in flight, which then writes the newest value again', async () => {
    const { dir, state, file, read } = setup();
    state.value = { v: 'old' };
    file.schedule();
    state.value = { v: 'now' };
    file.writeNow();
    expect(read()).toEqual({ v: 'now' });
    await file.flushed();
    expect(read()).toEqual({ v: 'now' });
    expect(readdirSync(dir)).toEqual(['x.json']);
  });

  it('reports a failed write and writes again on the next request', async () => {
    const { dir, state, file, read } = setup();
    rmSync(dir, { recursive: true, force: true });
    state.value = { v: 1 };
    file.schedule();
    await file.flushed();
    expect(state.errors.length).toBe(1);
    mkdirSync(dir);
    file.schedule();
    await file.flushed();
    expect(read()).toEqual({ v: 1 });
    expect(state.errors.length).toBe(1);
  });
});
