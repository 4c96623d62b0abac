import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts, ManagedServer } from './cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'nemesis-cluster-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The process state letter from /proc (R, S, T = stopped, ...), or undefined on systems without /proc. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

const script = join(dir, 'sleeper.mjs');
writeFileSync(script, 'console.log("up", process.argv.slice(2).join(" ")); setInterval(() => {}, 1000);\n');
const sleeper = { command: process.execPath, args: [script], kind: 'dist' as const, version: 'sleeper' };

describe('ManagedServer process control', () => {
  it('starts, pauses (SIGSTOP), resumes, kills (also while paused) and restarts with the same flags', async () => {
    const s = new ManagedServer(
      0,
      '127.0.0.1:1',
      '127.0.0.1:2',
      join(dir, 'data'),
      join(dir, 'server.log'),
      sleeper,
      ['--flag', 'x'],
      {},
    );
    const logged = () => readFileSync(join(dir, 'server.log'), 'utf8').split('up --flag x').length - 1;
    const until = async (n: number) => {
      const end = Date.now() + 15_000;
      while (logged() < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    };
    s.start();
    expect(s.state).toBe('running');
    const pid = s.pid as number;
    await until(1);
    s.pause();
    expect(s.state).toBe('paused');
    // SIGSTOP takes effect when the kernel next schedules the process: on a busy machine that can take a
    // while, so wait for the state to change (bounded by a generous deadline) instead of a fixed time.
    let st = procState(pid);
    const stopDeadline = Date.now() + 15_000;
    while (st !== undefined && st !== 'T' && Date.now() < stopDeadline) {
      await new Promise((r) => setTimeout(r, 20));
      st = procState(pid);
    }
    if (st !== undefined) expect(st).toBe('T');
    s.resume();
    expect(s.state).toBe('running');
    s.pause();
    await s.kill();
    expect(s.state).toBe('killed');
    expect(s.lastExit).toBe('SIGKILL');
    s.start();
    expect(s.starts).toBe(2);
    expect(s.pid).not.toBe(pid);
    await until(2);
    await s.kill();
    expect(logged()).toBe(2);
  });

  it('picks distinct free ports', async () => {
    const ports = await freePorts(5);
    expect(new Set(ports).size).toBe(5);
    for (const p of ports) expect(p).toBeGreaterThan(0);
  });
});
