/**
 * The attacker of the hostile suite's idle-connection flood, run as a process of its own (started by
 * `startIdleFlood` in `hostile-helpers.ts`) so its thousands of sockets use its own file
 * descriptors (raised with `ulimit -n` by its parent shell) and its own event loop, not the test's.
 *
 * `node idle-flood.ts HOST PORT HTTP_PORT COUNT LIMIT [FROM [PER_HOST]]`: opens COUNT TCP connections to
 * HOST:PORT that never send a byte, in waves smaller than the listen backlog, each wave waiting until the
 * server's `paxkv_connections` (read from HTTP_PORT) shows it holds them (or its limit LIMIT, or PER_HOST
 * per source address). FROM is a comma-separated list of local addresses the connections are spread over
 * (round robin; e.g. `127.0.0.2` for one attacking host that is not the host of the clients and peers,
 * or ten addresses for ten hosts); default: the kernel's choice. PER_HOST is the server's
 * `maxConnectionsPerHost` (0 = none). A connection the server closes is dialled again (100 ms later), as a
 * real attacker keeps its flood up: the header timeout alone cannot clear it; one closed within a second
 * of connecting (refused: the host is at its limit) backs off, doubling up to 5 s, like any client
 * refused by a server. Reports on stdout, one JSON object per line:
 * `{"event":"wave","open":N,"serverConnections":M}`, then `{"event":"holding",...}` once every connection
 * is open and the server is at its limit. Reads commands on stdin, one a line: `stop-reopening` (closed
 * connections stay closed, so the server's header timeout can clear the rest), `close` (destroy every
 * socket and exit). Exits when stdin ends.
 */
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

const [
  host = '127.0.0.1',
  portText = '',
  httpPortText = '',
  countText = '',
  limitText = '',
  fromText = '',
  perHostText = '0',
] = process.argv.slice(2);
const from = fromText === '' ? [] : fromText.split(',');
const perHost = Number(perHostText);
const port = Number(portText);
const httpPort = Number(httpPortText);
const count = Number(countText);
const limit = Number(limitText);
if (![port, httpPort, count, limit].every((n) => Number.isInteger(n) && n > 0) || !(perHost >= 0)) {
  process.stderr.write('usage: idle-flood.ts HOST PORT HTTP_PORT COUNT LIMIT [FROM [PER_HOST]]\n');
  process.exit(2);
}

/** Connections per wave: below the default listen backlog (511), so the kernel drops no handshake. */
const WAVE = 250;
const REDIAL_MS = 100;
const REFUSED_MS = 1_000;
/** Source addresses a connection of which was refused: no more dials from them. */
const full = new Set<string | undefined>();
let skipped = 0;
/** The most the server will hold from this flood: its limit, or its per-host limit times the hosts. */
const reachable = Math.min(limit, perHost > 0 ? perHost * Math.max(1, from.length) : limit);
let dialled = 0;
const open = new Set<Socket>();
let reopen = true;
let closedByServer = 0;
let failed = 0;

const report = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

/** Opens one idle connection; resolves once it is connected (or failed). */
function dial(localAddress = from[dialled++ % Math.max(1, from.length)]): Promise<void> {
  return new Promise((resolve) => {
    if (full.has(localAddress)) {
      skipped++;
      resolve();
      return;
    }
    const s = connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    let connectedAt = 0;
    s.setNoDelay(true);
    s.on('error', () => {});
    s.once('connect', () => {
      connectedAt = Date.now();
      open.add(s);
      resolve();
    });
    s.once('close', () => {
      if (!open.delete(s)) {
        failed++;
        resolve();
        return;
      }
      closedByServer++;
      if (Date.now() - connectedAt < REFUSED_MS) full.add(localAddress);
      else if (reopen) setTimeout(() => void dial(localAddress), REDIAL_MS);
    });
  });
}

async function serverConnections(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return Number(/^paxkv_connections (\d+)/m.exec(text)?.[1] ?? 0);
}

/** Waits until the server's open-connection count reaches `want` (a guard of 120 s against a hang). */
async function serverHolds(want: number): Promise<number> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const n = await serverConnections().catch(() => 0);
    if (n >= want || Date.now() > deadline) return n;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function flood(): Promise<void> {
  for (let opened = 0; opened < count; ) {
    const n = Math.min(WAVE, count - opened);
    await Promise.all(Array.from({ length: n }, () => dial()));
    opened += n;
    const held = await serverHolds(Math.min(open.size, reachable));
    report({ event: 'wave', open: open.size, serverConnections: held, closedByServer, failed, skipped });
  }
  const held = await serverHolds(reachable);
  report({ event: 'holding', open: open.size, serverConnections: held, closedByServer, failed, skipped });
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line === 'stop-reopening') {
      reopen = false;
      report({ event: 'stopped-reopening', open: open.size, closedByServer });
    } else if (line === 'close') {
      reopen = false;
      for (const s of open) s.destroy();
      process.exit(0);
    }
  })
  .on('close', () => process.exit(0));

flood().catch((e: unknown) => {
  report({ event: 'error', message: (e as Error).message });
  process.exit(1);
});
