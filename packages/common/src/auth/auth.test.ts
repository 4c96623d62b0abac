import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { msgpackCodec } from '../codec/msgpack.js';
import { ConfigError, UnauthenticatedError } from '../errors.js';
import { ClusterKey, resolveClusterKey } from './cluster-token.js';
import {
  type AuthChannel,
  acceptPeerAuth,
  createAcceptorAuth,
  dialPeerAuth,
  type PeerAuthError,
} from './handshake-hook.js';
import { type AuthChallenge, type AuthProof, PeerAuthAcceptor, PeerAuthDialer } from './peer-handshake.js';

const TOKEN = 'correct horse battery staple 42';
const key = ClusterKey.fromToken(TOKEN);
const other = ClusterKey.fromToken('another cluster, another token');

/** Deterministic nonces: 1, 2, 3... repeated. */
function counter(start: number) {
  let n = start;
  return (bytes: number) => new Uint8Array(bytes).fill(n++ & 0xff);
}

describe('ClusterKey', () => {
  it('refuses short tokens, padded tokens and ambiguous sources with a ConfigError that says what to do', () => {
    expect(() => ClusterKey.fromToken('short')).toThrow(/at least 16 characters.*randomBytes/);
    expect(() => ClusterKey.fromToken(` ${TOKEN}`)).toThrow(ConfigError);
    expect(() => resolveClusterKey({ token: TOKEN, file: '/x' })).toThrow(/not both/);
  });

  it('reads the token from the flag, a file (one trailing newline dropped) or PAXKV_CLUSTER_TOKEN', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-token-'));
    const file = join(dir, 'token');
    writeFileSync(file, `${TOKEN}\n`);
    expect(resolveClusterKey({ token: TOKEN, env: {} })!.equals(key)).toBe(true);
    expect(resolveClusterKey({ file, env: {} })!.equals(key)).toBe(true);
    expect(resolveClusterKey({ env: { PAXKV_CLUSTER_TOKEN: TOKEN } })!.equals(key)).toBe(true);
    expect(resolveClusterKey({ env: {} })).toBeNull();
    expect(() => resolveClusterKey({ file: join(dir, 'missing'), env: {} })).toThrow(/cannot be read/);
  });

  it('never prints the key or the token', () => {
    for (const shown of [String(key), JSON.stringify({ key }), inspect(key), inspect({ key })]) {
      expect(shown).toContain('redacted');
      expect(shown).not.toContain(TOKEN);
      expect(shown).not.toContain(Buffer.from(key.bytes).toString('hex'));
    }
  });
});

describe('the handshake state machines', () => {
  function run(dialerKey: ClusterKey, acceptorKey: ClusterKey, from: number | null = 2) {
    const d = new PeerAuthDialer(dialerKey, from, counter(1));
    const a = new PeerAuthAcceptor(acceptorKey, 1, counter(100));
    const hello = d.hello();
    const challenge = a.onHello(hello);
    if (!challenge.ok) return { stage: 'hello', result: challenge } as const;
    const proof = d.onChallenge(challenge.send);
    if (!proof.ok) return { stage: 'challenge', result: proof } as const;
    const verdict = a.onProof(proof.send);
    if (!verdict.ok) return { stage: 'proof', result: verdict } as const;
    const done = d.onVerdict(verdict.send);
    return {
      stage: 'done',
      result: done,
      from: verdict.from,
      messages: [hello, challenge.send, proof.send, verdict.send],
    } as const;
  }

  it('authenticates both sides holding the same token, binding the claimed node ids', () => {
    const r = run(key, key, 2);
    expect(r.stage).toBe('done');
    expect(r.result).toEqual({ ok: true, node: 1 });
    expect(r.stage === 'done' && r.from).toBe(2);
    expect(run(key, key, null).stage).toBe('done');
  });

  it('never sends the token or the derived key', () => {
    const r = run(key, key);
    if (r.stage !== 'done') throw new Error('handshake failed');
    const wire = Buffer.concat(r.messages.map((m) => Buffer.from(msgpackCodec.encode(m))));
    expect(wire.includes(Buffer.from(TOKEN))).toBe(false);
    expect(wire.includes(Buffer.from(key.bytes))).toBe(false);
  });

  it('a dialer with another token is caught by both sides: it cannot check the acceptor, nor prove itself', () => {
    const r = run(other, key);
    expect(r.stage).toBe('challenge');
    expect(r.result).toMatchObject({ ok: false, failure: 'bad-proof' });
    // Even a dialer that skips the check cannot produce a proof the acceptor takes.
    const d = new PeerAuthDialer(other, 2, counter(1));
    const a = new PeerAuthAcceptor(key, 1, counter(100));
    const ch = a.onHello(d.hello()) as { ok: true; send: AuthChallenge };
    const forgedDialer = new PeerAuthDialer(other, 2, counter(1));
    forgedDialer.hello();
    const selfSigned = new PeerAuthAcceptor(other, 1, () => ch.send.nonce);
    const sameHello = new PeerAuthDialer(other, 2, counter(1)).hello();
    const fakeChallenge = selfSigned.onHello(sameHello) as { ok: true; send: AuthChallenge };
    const proof = forgedDialer.onChallenge(fakeChallenge.send) as { ok: true; send: AuthProof };
    expect(a.onProof(proof.send)).toMatchObject({ ok: false, failure: 'bad-proof' });
  });

  it('refuses a replayed proof (fresh acceptor nonce) and a reflected one (role label)', () => {
    const first = run(key, key);
    if (first.stage !== 'done') throw new Error('handshake failed');
    const recordedProof = first.messages[2];
    const recordedChallenge = first.messages[1] as AuthChallenge;
    // Replay the recorded hello and proof to an acceptor with a fresh nonce.
    const a = new PeerAuthAcceptor(key, 1, counter(200));
    expect(a.onHello(first.messages[0]).ok).toBe(true);
    expect(a.onProof(recordedProof)).toMatchObject({ ok: false, failure: 'bad-proof' });
    // Reflect the acceptor's own proof back as a dialer proof.
    const b = new PeerAuthAcceptor(key, 1, counter(100));
    expect(b.onHello(first.messages[0]).ok).toBe(true);
    expect(b.onProof({ type: 'auth.proof', proof: recordedChallenge.proof })).toMatchObject({
      ok: false,
      failure: 'bad-proof',
    });
  });

  it('a node id changed in flight makes the proofs disagree', () => {
    const d = new PeerAuthDialer(key, 2, counter(1));
    const a = new PeerAuthAcceptor(key, 1, counter(100));
    const hello = { ...d.hello(), from: 3 };
    const ch = a.onHello(hello) as { ok: true; send: AuthChallenge };
    expect(d.onChallenge(ch.send)).toMatchObject({ ok: false, failure: 'bad-proof' });
  });

  it('refuses other versions, malformed messages and out-of-order steps', () => {
    const a = new PeerAuthAcceptor(key, 1);
    expect(a.onHello({ type: 'auth.hello', v: 2, from: 2, nonce: new Uint8Array(32) })).toMatchObject({
      failure: 'version',
    });
    for (const bad of [
      null,
      { type: 'peer.hello', from: 2 },
      { type: 'auth.hello', v: 1, from: 2, nonce: new Uint8Array(8) },
      { type: 'auth.hello', v: 1, from: -1, nonce: new Uint8Array(32) },
    ]) {
      expect(new PeerAuthAcceptor(key, 1).onHello(bad)).toMatchObject({ ok: false, failure: 'malformed' });
    }
    expect(
      new PeerAuthAcceptor(key, 1).onProof({ type: 'auth.proof', proof: new Uint8Array(32) }),
    ).toMatchObject({
      failure: 'malformed',
    });
    const d = new PeerAuthDialer(key, 2);
    d.hello();
    expect(d.onChallenge({ type: 'error', id: null, code: 'UNAUTHENTICATED', message: 'no' })).toMatchObject({
      failure: 'refused',
    });
  });
});

/** Two in-memory channels wired back to back (each side's send is the other's receive). */
function pipe(): [AuthChannel, AuthChannel] {
  const make = () => {
    const queue: unknown[] = [];
    const waiters: Array<(m: unknown) => void> = [];
    return {
      push(m: unknown) {
        const w = waiters.shift();
        if (w) w(m);
        else queue.push(m);
      },
      next(consume: boolean): Promise<unknown> {
        if (queue.length > 0) return Promise.resolve(consume ? queue.shift() : queue[0]);
        return new Promise((resolve) =>
          waiters.push((m) => {
            if (!consume) queue.unshift(m);
            resolve(m);
          }),
        );
      },
    };
  };
  const toA = make();
  const toB = make();
  // Round-trip through the real codec so the messages are what the wire carries.
  const wire = (m: unknown) => {
    const r = msgpackCodec.decode(msgpackCodec.encode(m));
    if (!r.ok) throw r.error;
    return r.value;
  };
  const side = (inbox: ReturnType<typeof make>, outbox: ReturnType<typeof make>): AuthChannel => ({
    send: (m) => {
      outbox.push(wire(m));
      return true;
    },
    receive: () => inbox.next(true),
    peek: () => inbox.next(false),
  });
  return [side(toA, toB), side(toB, toA)];
}

describe('the handshake over a channel', () => {
  it('authenticates a dialer and an acceptor with the same token', async () => {
    const [d, a] = pipe();
    const [dialed, accepted] = await Promise.all([
      dialPeerAuth(d, { key, from: 3 }),
      createAcceptorAuth({ key, node: () => 1 })(a),
    ]);
    expect(dialed).toEqual({ node: 1 });
    expect(accepted).toEqual({ kind: 'peer', from: 3 });
  });

  it('a wrong token fails on both sides with UNAUTHENTICATED', async () => {
    const [d, a] = pipe();
    const [dialed, accepted] = await Promise.allSettled([
      dialPeerAuth(d, { key: other, from: 3 }),
      acceptPeerAuth(a, { key, node: 1 }),
    ]);
    expect(dialed.status).toBe('rejected');
    const e = (dialed as PromiseRejectedResult).reason as PeerAuthError;
    expect(e).toBeInstanceOf(UnauthenticatedError);
    expect(e.code).toBe('UNAUTHENTICATED');
    expect(e.failure).toBe('bad-proof');
    expect(e.message).toMatch(/cluster token/);
    // The dialer told the acceptor why it gave up.
    expect(accepted.status).toBe('rejected');
    expect((accepted as PromiseRejectedResult).reason).toMatchObject({
      code: 'UNAUTHENTICATED',
      failure: 'refused',
    });
    expect(((accepted as PromiseRejectedResult).reason as Error).message).toMatch(/could not prove/);
  });

  it('an acceptor refuses a forged proof and tells the dialer why', async () => {
    const [d, a] = pipe();
    const accepting = acceptPeerAuth(a, { key, node: 1 }).catch((e: unknown) => e);
    d.send({ type: 'auth.hello', v: 1, from: 2, nonce: new Uint8Array(32) });
    expect(await d.receive()).toMatchObject({ type: 'auth.challenge', node: 1 });
    d.send({ type: 'auth.proof', proof: new Uint8Array(32).fill(7) });
    expect(await d.receive()).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
    expect(await accepting).toMatchObject({ code: 'UNAUTHENTICATED', failure: 'bad-proof' });
  });

  it('lets a client through as anonymous, leaving its first message for the application', async () => {
    const [c, a] = pipe();
    c.send({ type: 'kv', id: 1, op: { op: 'get', key: 'k' } });
    expect(await createAcceptorAuth({ key, node: () => 1 })(a)).toEqual({ kind: 'anonymous' });
    expect(await a.receive()).toMatchObject({ type: 'kv', id: 1 });
  });
});
