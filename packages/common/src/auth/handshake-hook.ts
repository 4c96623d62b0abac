/**
 * The peer handshake driven over a connection: small async adapters from the pure state machines of
 * `peer-handshake.ts` to a message channel (the transport's handshake hook channel fits it).
 * @module
 */
import { UnauthenticatedError } from '../errors.js';
import { errorMessage } from '../protocol/messages.js';
import type { ClusterKey } from './cluster-token.js';
import {
  type AuthFailure,
  type AuthStepFailure,
  type NonceSource,
  PeerAuthAcceptor,
  PeerAuthDialer,
} from './peer-handshake.js';

/** What the handshake needs from a connection before the application sees it. */
export interface AuthChannel {
  /** Sends one message; false if the connection is closed or full. */
  send(message: unknown): boolean;
  /** The next message, consumed. Rejects when the connection closes first. */
  receive(): Promise<unknown>;
  /** The next message, left for the application. Rejects when the connection closes first. */
  peek(): Promise<unknown>;
}

/**
 * Lets the frames queued in this turn reach the socket before the caller gives up on the connection
 * (the transport corks writes until the end of the turn, and a failed handshake destroys the socket).
 */
const flushTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A handshake that failed: {@link UnauthenticatedError} with the reason as a metric label. */
export class PeerAuthError extends UnauthenticatedError {
  /** Why (a metric label). */
  readonly failure: AuthFailure;
  constructor(failure: AuthFailure, cause: UnauthenticatedError) {
    super({ reason: 'handshake failed' }, { message: cause.message, cause });
    this.failure = failure;
  }
}

/**
 * Ends a failed handshake: tells the other side why (unless it refused us first), lets that frame reach
 * the socket, and throws.
 */
async function giveUp(channel: AuthChannel, f: AuthStepFailure): Promise<never> {
  if (f.failure !== 'refused') {
    channel.send(errorMessage(f.error));
    await flushTurn();
  }
  throw new PeerAuthError(f.failure, f.error);
}

/**
 * Runs the dialling side on `channel`: sends the hello, checks the acceptor's proof, proves the token.
 * Resolves with the acceptor's node id (null if it has none yet).
 * @throws {@link PeerAuthError} if the acceptor does not hold the token or refuses ours.
 */
export async function dialPeerAuth(
  channel: AuthChannel,
  options: { readonly key: ClusterKey; readonly from: number | null; readonly nonce?: NonceSource },
): Promise<{ readonly node: number | null }> {
  const dialer = new PeerAuthDialer(options.key, options.from, options.nonce);
  channel.send(dialer.hello());
  const challenge = dialer.onChallenge(await channel.receive());
  // Tell the acceptor why (it would otherwise wait for a proof until its timeout).
  if (!challenge.ok) return giveUp(channel, challenge);
  channel.send(challenge.send);
  const verdict = dialer.onVerdict(await channel.receive());
  if (!verdict.ok) throw new PeerAuthError(verdict.failure, verdict.error);
  return { node: verdict.node };
}

/**
 * Runs the accepting side on `channel`, whose next message must be the dialer's `auth.hello`. Resolves
 * with the dialer's authenticated claim (`from`: its node id, null for a server that has none yet). On
 * failure it sends the dialer an `error` (code `UNAUTHENTICATED`, the reason) before throwing.
 * @throws {@link PeerAuthError} if the dialer does not prove the token.
 */
export async function acceptPeerAuth(
  channel: AuthChannel,
  options: { readonly key: ClusterKey; readonly node: number | null; readonly nonce?: NonceSource },
): Promise<{ readonly from: number | null }> {
  const acceptor = new PeerAuthAcceptor(options.key, options.node, options.nonce);
  const challenge = acceptor.onHello(await channel.receive());
  if (!challenge.ok) return giveUp(channel, challenge);
  channel.send(challenge.send);
  const verdict = acceptor.onProof(await channel.receive());
  if (!verdict.ok) return giveUp(channel, verdict);
  channel.send(verdict.send);
  return { from: verdict.from };
}

/** Who is on the other end of an accepted connection, as far as the handshake established. */
export type InboundIdentity =
  /** The dialer proved the cluster token; `from` is its claimed node id (null: not assigned yet). */
  | { readonly kind: 'peer'; readonly from: number | null }
  /** The dialer did not start a handshake (a client, or a process without the token). */
  | { readonly kind: 'anonymous' };

/**
 * A server-side hook for a port shared by clients and peers: it peeks at the first message; an
 * `auth.hello` runs {@link acceptPeerAuth} and yields `{ kind: 'peer', from }`, anything else is left for
 * the application and yields `{ kind: 'anonymous' }` (the application must then refuse peer and
 * bootstrap messages on that connection).
 * @param node this server's node id now (read at each handshake: it may be assigned later).
 */
export function createAcceptorAuth(options: {
  readonly key: ClusterKey;
  readonly node: () => number | null;
  readonly nonce?: NonceSource;
}): (channel: AuthChannel) => Promise<InboundIdentity> {
  return async (channel) => {
    const first = await channel.peek();
    const type = typeof first === 'object' && first !== null ? (first as { type?: unknown }).type : undefined;
    if (type !== 'auth.hello') return { kind: 'anonymous' };
    const { from } = await acceptPeerAuth(channel, {
      key: options.key,
      node: options.node(),
      ...(options.nonce ? { nonce: options.nonce } : {}),
    });
    return { kind: 'peer', from };
  };
}

/** Who is on the other end of a dialled connection: the acceptor proved the token; `node` is its id. */
export interface OutboundIdentity {
  readonly kind: 'acceptor';
  readonly node: number | null;
}

/**
 * One hook for both sides of a server's connections (the transport passes `role`): on connections this
 * server dials it runs {@link dialPeerAuth} as `self()`, on connections it accepts it runs
 * {@link createAcceptorAuth} (clients pass through as `anonymous`).
 */
export function createClusterHandshake(options: {
  readonly key: ClusterKey;
  /** This server's node id now (null before the bootstrap server assigned one). */
  readonly self: () => number | null;
  readonly nonce?: NonceSource;
}): (
  channel: AuthChannel & { readonly role: 'client' | 'server' },
) => Promise<InboundIdentity | OutboundIdentity> {
  const nonce = options.nonce ? { nonce: options.nonce } : {};
  const accept = createAcceptorAuth({ key: options.key, node: options.self, ...nonce });
  return async (channel) => {
    if (channel.role === 'server') return accept(channel);
    const { node } = await dialPeerAuth(channel, { key: options.key, from: options.self(), ...nonce });
    return { kind: 'acceptor', node };
  };
}
