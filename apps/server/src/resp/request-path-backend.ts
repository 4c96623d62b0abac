/**
 * The RESP backend of a real server: each operation becomes a `kv` request of the server's request path
 * (`RequestPath.execute`, the entry point the native port uses), so RESP and native clients share
 * routing, forwarding to group leaders, retries and exactly-once sessions. Nothing is stored here.
 * @module
 */
import { randomBytes } from 'node:crypto';
import {
  type ClientRequest,
  errorFromWire,
  type KvOp,
  type KvResult,
  type ProtocolLimits,
  type ServerResponse,
  type Session,
  UnavailableError,
} from '@paxkv/common';
import type { RespBackend, RespServerFacts } from './backend.js';

/** What the backend needs from the server. */
export interface RequestPathBackendDeps {
  /** The request path's entry point (`server.requests.execute`). */
  readonly execute: (request: ClientRequest, origin: { forwarded: boolean }) => Promise<ServerResponse>;
  readonly facts: () => RespServerFacts;
  readonly limits: ProtocolLimits;
  /**
   * Client authentication (`--auth`): `login` checks a user's password, `authorize` checks one request
   * of a logged-in (or not) connection. Absent: every request runs.
   */
  readonly access?: {
    login(user: string, password: string): Promise<unknown>;
    authorize(principal: unknown, request: ClientRequest): Promise<ClientRequest>;
  };
}

/** Builds the backend (see the module comment). */
export function requestPathBackend(deps: RequestPathBackendDeps): RespBackend {
  // Unique per process: a restarted server never reuses the session ids of its previous life.
  const sessionPrefix = `resp.${randomBytes(6).toString('hex')}`;
  let nextId = 1;
  return {
    limits: deps.limits,
    sessionPrefix,
    facts: deps.facts,
    ...(deps.access ? { login: deps.access.login } : {}),
    async execute(op: KvOp, session: Session | undefined, principal?: unknown): Promise<KvResult> {
      const id = nextId++;
      if (nextId > Number.MAX_SAFE_INTEGER) nextId = 1;
      let request: ClientRequest = { type: 'kv', id, op, ...(session ? { session } : {}) };
      // Checked where the client connected, like the native port (forwarded requests are not re-checked).
      if (deps.access) request = await deps.access.authorize(principal ?? null, request);
      const reply = await deps.execute(request, { forwarded: false });
      if (reply.type === 'kv.ok') return reply.result;
      if (reply.type === 'error') throw errorFromWire(reply);
      throw new UnavailableError({ reason: `unexpected reply ${reply.type} to a kv request` });
    },
  };
}
