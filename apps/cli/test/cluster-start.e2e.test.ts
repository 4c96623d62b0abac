/**
 * `cluster start` when a port it picked is taken before the server binds it (EADDRINUSE), with real
 * servers: a NEW cluster starts again on fresh ports (and says so), a cluster restarted on its data keeps
 * its ports and fails with the server's reason, and a new cluster gives up after
 * NEW_CLUSTER_START_ATTEMPTS. The taken port is a real listening socket of this test.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@paxkv/client';
import { freePorts, resolveServerCommand } from '@paxkv/server/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterError,
  isAlive,
  NEW_CLUSTER_START_ATTEMPTS,
  readClusterFile,
  type StartClusterOptions,
  startCluster,
  stopCluster,
} from '../src/cluster.js';
import { statusOf } from '../src/connect.js';

let root: string;
let holder: Squatter;
/** The port this test holds: a server given it fails to listen (EADDRINUSE). */
let taken: number;
const dirs: string[] = [];

/** A listening socket on a port, standing for "another process took it". */
interface Squatter {
  readonly port: number;
  /** Stops listening and drops the connections servers made to it (they dial it as a peer). */
  close(): Promise<void>;
}

async function squat(port: number): Promise<Squatter> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r, j) => {
    server.once('error', j);
    server.listen(port, '127.0.0.1', () => r());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function killAll(): void {
  for (const d of dirs)
    for (const n of readClusterFile(d)?.nodes ?? [])
      if (isAlive(n.pid)) process.kill(n.pid as number, 'SIGKILL');
}
process.on('exit', killAll);

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'paxkv-cluster-start-'));
  holder = await squat(0);
  taken = holder.port;
});

afterAll(async () => {
  killAll();
  await holder.close();
  rmSync(root, { recursive: true, force: true });
});

/** Options of a 3-server cluster in `dir` whose first `poisoned` port picks give server 2 the taken port. */
function options(
  dir: string,
  poisoned: number,
  lines: string[],
): StartClusterOptions & { picks: () => number } {
  let picks = 0;
  dirs.push(dir);
  return {
    dir,
    nodes: 3,
    partitions: 2,
    serverCommand: resolveServerCommand({ preferSource: true }),
    statusOf: (a) => statusOf(a, 2000),
    log: (line) => lines.push(line),
    readyTimeoutMs: 60_000,
    pickPorts: async (count) => {
      const ports = await freePorts(count);
      // [port, http port] per server: index 2 is server 2's peer and client port.
      if (picks++ < poisoned) ports[2] = taken;
      return ports;
    },
    picks: () => picks,
  };
}

describe('cluster start and a port taken before the server binds it', () => {
  it('starts a new cluster again on fresh ports, and the cluster serves', async () => {
    const lines: string[] = [];
    const o = options(join(root, 'retried'), 1, lines);
    const started = await startCluster(o);
    expect(o.picks()).toBe(2);
    expect(lines.join('\n')).toMatch(
      new RegExp(
        `a server lost a port before binding it \\(.*EADDRINUSE.*:${taken}.*\\): starting the new cluster again on fresh ports \\(attempt 2 of ${NEW_CLUSTER_START_ATTEMPTS}\\)`,
      ),
    );
    const ports = started.file.nodes.flatMap((n) => [n.port, n.httpPort]);
    expect(ports).not.toContain(taken);
    expect(readClusterFile(o.dir)?.nodes.map((n) => n.port)).toEqual(started.file.nodes.map((n) => n.port));
    expect(started.view.servers.filter((s) => s.reachable)).toHaveLength(3);
    const kv = createClient({ servers: started.file.nodes.map((n) => n.address), requestTimeoutMs: 30_000 });
    try {
      await kv.put('k', 'v');
      expect(await kv.get('k')).toBe('v');
    } finally {
      await kv.close();
    }
    await stopCluster(o.dir, { graceMs: 5000 });
  }, 60_000);

  it('keeps the ports of a cluster restarted on its data, failing with the reason', async () => {
    const lines: string[] = [];
    const o = options(join(root, 'restarted'), 0, lines);
    const first = await startCluster(o);
    await stopCluster(o.dir, { graceMs: 5000 });
    // Server 2's recorded port is now held by someone else.
    const second = first.file.nodes[1]?.port as number;
    const squatter = await squat(second);
    try {
      const restart = startCluster({ ...o, log: (l) => lines.push(l) });
      await expect(restart).rejects.toThrow(ClusterError);
      await expect(restart).rejects.toThrow(
        new RegExp(`server 2 exited during start-up .*EADDRINUSE.*:${second}`, 's'),
      );
      // It says what to do: which port to free, and how to find who holds it.
      await expect(restart).rejects.toThrow(
        new RegExp(
          `^server 2's address 127\\.0\\.0\\.1:${second} is taken by another process.*free port ${second} \\(\`ss -ltnp 'sport = :${second}'\``,
        ),
      );
      expect(o.picks()).toBe(1);
      expect(readClusterFile(o.dir)?.nodes.map((n) => n.port)).toEqual(first.file.nodes.map((n) => n.port));
      expect(existsSync(first.file.nodes[0]?.dataDir as string)).toBe(true);
      expect(readClusterFile(o.dir)?.nodes.every((n) => !isAlive(n.pid))).toBe(true);
    } finally {
      await squatter.close();
    }
  }, 60_000);

  it(`gives a new cluster up after ${NEW_CLUSTER_START_ATTEMPTS} starts, leaving no server running`, async () => {
    const lines: string[] = [];
    const o = options(join(root, 'given-up'), Number.POSITIVE_INFINITY, lines);
    await expect(startCluster(o)).rejects.toThrow(/server 2 exited during start-up .*EADDRINUSE/s);
    expect(o.picks()).toBe(NEW_CLUSTER_START_ATTEMPTS);
    expect(lines.filter((l) => l.includes('starting the new cluster again'))).toHaveLength(
      NEW_CLUSTER_START_ATTEMPTS - 1,
    );
    expect(readClusterFile(o.dir)?.nodes.every((n) => !isAlive(n.pid))).toBe(true);
  }, 60_000);
});
