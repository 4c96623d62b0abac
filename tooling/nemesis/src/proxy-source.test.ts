/**
 * The proxy with `identifyBy: 'source-address'`: peers are told apart by the loopback address they dial
 * from, and the stream (TLS here, with a throwaway CA from `@paxkv/server/certs`) is relayed unread.
 */
import { connect as netConnect } from 'node:net';
import { type Server, type TLSSocket, connect as tlsConnect, createServer as tlsServer } from 'node:tls';
import { createCertificateAuthority, issueCertificate } from '@paxkv/server/certs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy, FaultProxyError, type FaultProxyEvent } from './proxy.js';

const until = async (what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

let ca: string;
let cert: string;
let key: string;
let echo: Server;
let echoPort = 0;

beforeAll(async () => {
  const authority = await createCertificateAuthority();
  // The target's certificate names the listener hosts the dialers check (as each server's names its own).
  const pair = await issueCertificate(authority, {
    commonName: 'target',
    hosts: ['127.0.0.11', '127.0.0.21'],
  });
  ca = authority.cert;
  cert = pair.cert;
  key = pair.key;
  echo = tlsServer({ cert, key, ca }, (s) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => s.write(d));
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const a = echo.address();
  if (a === null || typeof a === 'string') throw new Error('no address');
  echoPort = a.port;
});

afterAll(async () => {
  await new Promise<void>((r) => echo.close(() => r()));
});

/** A TLS client of `address` dialling from `localAddress`, collecting what it reads. */
class Dialer {
  text = '';
  closed = false;
  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (d: Buffer) => {
      this.text += d.toString();
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static open(address: string, localAddress: string): Promise<Dialer> {
    const [host = '', port = '0'] = address.split(':');
    return new Promise((resolve, reject) => {
      const raw = netConnect({ host, port: Number(port), localAddress });
      const socket = tlsConnect({ socket: raw, host, ca });
      socket.once('secureConnect', () => resolve(new Dialer(socket)));
      socket.once('error', reject);
    });
  }
}

describe("FaultProxy with identifyBy 'source-address' over TLS", () => {
  let proxy: FaultProxy;
  let toOne: string;
  const dialers: Dialer[] = [];
  const events: FaultProxyEvent[] = [];

  beforeEach(async () => {
    proxy = new FaultProxy({ seed: 3, identifyBy: 'source-address' });
    proxy.onEvent((e) => events.push(e));
    toOne = await proxy.addTarget(1, `127.0.0.1:${echoPort}`, 0, '127.0.0.11');
    await proxy.addTarget(2, `127.0.0.1:${echoPort + 1}`, 0, '127.0.0.12');
  });

  afterEach(async () => {
    for (const d of dialers.splice(0)) d.socket.destroy();
    events.length = 0;
    await proxy.close();
  });

  const dial = async (from: string): Promise<Dialer> => {
    const d = await Dialer.open(toOne, from);
    dialers.push(d);
    return d;
  };

  it('names a connection by the node whose address it comes from, anything else a client', async () => {
    const peer = await dial('127.0.0.12');
    const client = await dial('127.0.0.1');
    peer.socket.write('ping');
    client.socket.write('pong');
    await until('both echoes', () => peer.text === 'ping' && client.text === 'pong');
    const from = proxy
      .connections()
      .map((c) => c.from)
      .sort();
    expect(from).toEqual([2, 'client']);
    expect(proxy.stats.peerConnections).toBe(1);
  });

  it('applies cuts and blackholes to the TLS stream it cannot read', async () => {
    const peer = await dial('127.0.0.12');
    const client = await dial('127.0.0.1');
    proxy.partition([[2, 1]]);
    await until('the peer connection closed by the cut', () => peer.closed);
    expect(events.some((e) => e.kind === 'closed-by-rule' && e.from === 2)).toBe(true);
    // A new connection from node 2 is refused at once; the client is untouched.
    const again = await dial('127.0.0.12').catch(() => undefined);
    if (again !== undefined) await until('the refused connection closed', () => again.closed);
    client.socket.write('still');
    await until('client echo', () => client.text === 'still');
    proxy.heal();
    const held = await dial('127.0.0.12');
    proxy.setRule(2, 1, { kind: 'blackhole' });
    held.socket.write('held-1');
    held.socket.write('held-2');
    await until('bytes held', () => proxy.stats.framesHeld > 0);
    expect(held.text).toBe('');
    proxy.heal();
    await until('held bytes delivered in order', () => held.text === 'held-1held-2');
    expect(held.closed).toBe(false);
  });

  it('renames connections identified under a provisional id when the node is rebound', async () => {
    const provisional = new FaultProxy({ identifyBy: 'source-address' });
    try {
      const to = await provisional.addTarget(1, `127.0.0.1:${echoPort}`, 0, '127.0.0.21');
      await provisional.addTarget(1_000_002, `127.0.0.1:${echoPort}`, 0, '127.0.0.22');
      const d = await Dialer.open(to, '127.0.0.22');
      dialers.push(d);
      await until('identified', () => provisional.connections()[0]?.from === 1_000_002);
      provisional.rebindTarget(1_000_002, 2);
      expect(provisional.connections()[0]?.from).toBe(2);
      provisional.partition([[2, 1]]);
      await until('the renamed connection cut', () => d.closed);
    } finally {
      await provisional.close();
    }
  });

  it('refuses two nodes on one address', async () => {
    await expect(proxy.addTarget(3, `127.0.0.1:${echoPort}`, 0, '127.0.0.12')).rejects.toThrow(
      FaultProxyError,
    );
  });
});
