/**
 * Peer authentication with a cluster token: a mutual HMAC challenge-response, as a pure state machine
 * (messages in, messages out; no sockets, no timers). The token never travels.
 *
 * ```
 * dialer                                         acceptor
 *   auth.hello     { v, from, nonce: Nd }   ──►
 *                                           ◄──  auth.challenge { node, nonce: Na,
 *                                                                 proof: HMAC(K, "acceptor" ‖ from ‖ node ‖ Nd ‖ Na) }
 *   (checks the acceptor's proof)
 *   auth.proof     { proof: HMAC(K, "dialer" ‖ from ‖ node ‖ Nd ‖ Na) }  ──►
 *                                           ◄──  auth.ok     (or an `error` UNAUTHENTICATED, then close)
 * ```
 *
 * K is derived from the token ({@link ClusterKey}); Nd and Na are 32 fresh random bytes from each side,
 * so a recorded exchange cannot be replayed and neither side can make the other sign a value of its
 * choosing for the other role (the role label differs). Both sides learn that the other holds the
 * token; the claimed node ids (`from`, `node`) are bound into both proofs.
 *
 * What it does not do: protect the connection after the handshake. Without TLS an attacker on the
 * network path can still read or hijack an authenticated TCP stream; the token stops every process
 * that does not hold it from speaking as a peer, which is the threat of a shared host or network.
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { UnauthenticatedError } from '../errors.js';
import type { ClusterKey } from './cluster-token.js';

/** Version of the handshake carried by `auth.hello`. */
export const PEER_AUTH_VERSION = 1;
/** Length of each nonce, in bytes. */
export const AUTH_NONCE_BYTES = 32;
/** Length of an HMAC-SHA256 proof, in bytes. */
export const AUTH_PROOF_BYTES = 32;

const NodeIdOrNull = z.number().int().positive().max(Number.MAX_SAFE_INTEGER).nullable();
const bytesOf = (n: number) =>
  z.custom<Uint8Array>((x) => x instanceof Uint8Array && x.length === n, { message: `must be ${n} bytes` });

/** Dialer → acceptor: "I am `from` (null: a server without a node id yet), here is my nonce". */
export const AuthHelloSchema = z.object({
  type: z.literal('auth.hello'),
  v: z.literal(PEER_AUTH_VERSION),
  from: NodeIdOrNull,
  nonce: bytesOf(AUTH_NONCE_BYTES),
});
/** Acceptor → dialer: its node id, its nonce, and its proof of the token. */
export const AuthChallengeSchema = z.object({
  type: z.literal('auth.challenge'),
  node: NodeIdOrNull,
  nonce: bytesOf(AUTH_NONCE_BYTES),
  proof: bytesOf(AUTH_PROOF_BYTES),
});
/** Dialer → acceptor: the dialer's proof of the token. */
export const AuthProofSchema = z.object({ type: z.literal('auth.proof'), proof: bytesOf(AUTH_PROOF_BYTES) });
/** Acceptor → dialer: the dialer is authenticated; application messages follow. */
export const AuthOkSchema = z.object({ type: z.literal('auth.ok') });

/** An `auth.hello`. */
export type AuthHello = z.infer<typeof AuthHelloSchema>;
/** An `auth.challenge`. */
export type AuthChallenge = z.infer<typeof AuthChallengeSchema>;
/** An `auth.proof`. */
export type AuthProof = z.infer<typeof AuthProofSchema>;
/** An `auth.ok`. */
export type AuthOk = z.infer<typeof AuthOkSchema>;

/** The `type` tags of the handshake messages. */
export const AUTH_MESSAGE_TYPES = ['auth.hello', 'auth.challenge', 'auth.proof', 'auth.ok'] as const;

/** True when `x` is an object whose `type` is one of {@link AUTH_MESSAGE_TYPES}. */
export function isAuthMessage(x: unknown): boolean {
  const t = typeof x === 'object' && x !== null ? (x as { type?: unknown }).type : undefined;
  return typeof t === 'string' && (AUTH_MESSAGE_TYPES as readonly string[]).includes(t);
}

/** Source of nonces (tests pass a deterministic one). Default: `crypto.randomBytes`. */
export type NonceSource = (bytes: number) => Uint8Array;
const defaultNonce: NonceSource = (n) => new Uint8Array(randomBytes(n));

function proofOf(
  key: ClusterKey,
  role: 'dialer' | 'acceptor',
  from: number | null,
  node: number | null,
  dialerNonce: Uint8Array,
  acceptorNonce: Uint8Array,
): Uint8Array {
  const h = createHmac('sha256', key.bytes);
  h.update(`paxkv-peer-auth-v${PEER_AUTH_VERSION}\n${role}\n${from ?? '-'}\n${node ?? '-'}\n`);
  h.update(dialerNonce);
  h.update(acceptorNonce);
  return new Uint8Array(h.digest());
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Why a handshake failed (a metric label). */
export type AuthFailure =
  /** A message of the wrong type or shape where a handshake message was due. */
  | 'malformed'
  /** An `auth.hello` of another version. */
  | 'version'
  /** A proof that does not verify: the other side holds another token (or none). */
  | 'bad-proof'
  /** The other side refused us (it sent an `error`). */
  | 'refused';

/** A failed step: the error to report (and to send to the other side, on the acceptor). */
export interface AuthStepFailure {
  readonly ok: false;
  readonly failure: AuthFailure;
  readonly error: UnauthenticatedError;
}

function fail(failure: AuthFailure, reason: string): AuthStepFailure {
  return { ok: false, failure, error: new UnauthenticatedError({ reason }) };
}

/** The dialling side of one handshake. Use once per connection. */
export class PeerAuthDialer {
  private readonly nonce: Uint8Array;
  private state: 'new' | 'hello-sent' | 'proof-sent' | 'done' | 'failed' = 'new';
  private acceptorNode: number | null = null;

  /**
   * @param key the cluster key.
   * @param from this server's node id, or null before the bootstrap server assigned one.
   * @param nonce source of the nonce (default `crypto.randomBytes`).
   */
  constructor(
    private readonly key: ClusterKey,
    private readonly from: number | null,
    nonce: NonceSource = defaultNonce,
  ) {
    this.nonce = nonce(AUTH_NONCE_BYTES);
  }

  /** The first message to send. */
  hello(): AuthHello {
    if (this.state !== 'new') throw new Error('hello() called twice');
    this.state = 'hello-sent';
    return { type: 'auth.hello', v: PEER_AUTH_VERSION, from: this.from, nonce: this.nonce };
  }

  /** Handles the acceptor's answer to the hello: returns the proof to send, or why to give up. */
  onChallenge(message: unknown): { readonly ok: true; readonly send: AuthProof } | AuthStepFailure {
    if (this.state !== 'hello-sent') return this.failed(fail('malformed', 'challenge out of order'));
    const refused = refusal(message);
    if (refused) return this.failed(refused);
    const m = AuthChallengeSchema.safeParse(message);
    if (!m.success) return this.failed(fail('malformed', 'the peer did not answer with an auth.challenge'));
    const { node, nonce, proof } = m.data;
    const expected = proofOf(this.key, 'acceptor', this.from, node, this.nonce, nonce);
    if (!sameBytes(proof, expected)) {
      return this.failed(
        fail('bad-proof', 'the peer could not prove it holds the cluster token (another token, or none)'),
      );
    }
    this.acceptorNode = node;
    this.state = 'proof-sent';
    return {
      ok: true,
      send: { type: 'auth.proof', proof: proofOf(this.key, 'dialer', this.from, node, this.nonce, nonce) },
    };
  }

  /** Handles the acceptor's verdict: resolves with the acceptor's node id, or why it refused. */
  onVerdict(message: unknown): { readonly ok: true; readonly node: number | null } | AuthStepFailure {
    if (this.state !== 'proof-sent') return this.failed(fail('malformed', 'verdict out of order'));
    const refused = refusal(message);
    if (refused) return this.failed(refused);
    if (!AuthOkSchema.safeParse(message).success) {
      return this.failed(fail('malformed', 'the peer did not answer with auth.ok'));
    }
    this.state = 'done';
    return { ok: true, node: this.acceptorNode };
  }

  private failed(f: AuthStepFailure): AuthStepFailure {
    this.state = 'failed';
    return f;
  }
}

/** The accepting side of one handshake. Use once per connection. */
export class PeerAuthAcceptor {
  private readonly nonce: Uint8Array;
  private state: 'new' | 'challenged' | 'done' | 'failed' = 'new';
  private hello: AuthHello | undefined;

  /**
   * @param key the cluster key.
   * @param node this server's node id (null before it has one).
   * @param nonce source of the nonce (default `crypto.randomBytes`).
   */
  constructor(
    private readonly key: ClusterKey,
    private readonly node: number | null,
    nonce: NonceSource = defaultNonce,
  ) {
    this.nonce = nonce(AUTH_NONCE_BYTES);
  }

  /** Handles the dialer's hello: returns the challenge to send, or why to refuse. */
  onHello(message: unknown): { readonly ok: true; readonly send: AuthChallenge } | AuthStepFailure {
    if (this.state !== 'new') return this.failed(fail('malformed', 'hello out of order'));
    const t = typeof message === 'object' && message !== null ? (message as { v?: unknown }).v : undefined;
    if ((message as { type?: unknown })?.type === 'auth.hello' && t !== PEER_AUTH_VERSION) {
      return this.failed(
        fail(
          'version',
          `handshake version ${String(t)} is not supported (this server speaks ${PEER_AUTH_VERSION})`,
        ),
      );
    }
    const m = AuthHelloSchema.safeParse(message);
    if (!m.success) return this.failed(fail('malformed', 'the first message was not a valid auth.hello'));
    this.hello = m.data;
    this.state = 'challenged';
    return {
      ok: true,
      send: {
        type: 'auth.challenge',
        node: this.node,
        nonce: this.nonce,
        proof: proofOf(this.key, 'acceptor', m.data.from, this.node, m.data.nonce, this.nonce),
      },
    };
  }

  /**
   * Handles the dialer's proof: on success returns `auth.ok` to send and the authenticated claim of the
   * dialer (`from`); else why it is refused (send `error` to the dialer, then close).
   */
  onProof(
    message: unknown,
  ): { readonly ok: true; readonly send: AuthOk; readonly from: number | null } | AuthStepFailure {
    const hello = this.hello;
    if (this.state !== 'challenged' || hello === undefined) {
      return this.failed(fail('malformed', 'proof out of order'));
    }
    const refused = refusal(message);
    if (refused) return this.failed(refused);
    const m = AuthProofSchema.safeParse(message);
    if (!m.success) return this.failed(fail('malformed', 'the peer did not answer with an auth.proof'));
    const expected = proofOf(this.key, 'dialer', hello.from, this.node, hello.nonce, this.nonce);
    if (!sameBytes(m.data.proof, expected)) {
      return this.failed(
        fail('bad-proof', 'the proof of the cluster token does not verify (another token, or none)'),
      );
    }
    this.state = 'done';
    return { ok: true, send: { type: 'auth.ok' }, from: hello.from };
  }

  private failed(f: AuthStepFailure): AuthStepFailure {
    this.state = 'failed';
    return f;
  }
}

/** An `error` message from the other side, as a failure (keeps its message). */
function refusal(message: unknown): AuthStepFailure | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as { type?: unknown; message?: unknown };
  if (m.type !== 'error') return undefined;
  const text = typeof m.message === 'string' ? m.message.slice(0, 500) : 'no reason given';
  return fail('refused', `the peer refused the handshake (${text})`);
}
