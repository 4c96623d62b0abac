/**
 * Client authentication: the `auth` option logs every connection in before it carries requests (a
 * transport handshake: `login` then `login.ok`), with a password the first time and then with the
 * session token the server returned (so a new connection costs the server no scrypt hash), falling
 * back to the password when the token is refused (expired).
 * @module
 */
import {
  errorFromWire,
  type Handshake,
  type HandshakeChannel,
  type LoginOk,
  parseServerResponse,
  UnauthenticatedError,
} from '@paxkv/common';

/** Credentials of the `auth` client option: a user and password, or a session token (`paxkv login`). */
export type ClientAuth = { readonly user: string; readonly password: string } | { readonly token: string };

/** The session a client holds after its first login. */
export interface ClientSession {
  readonly user: string;
  readonly roles: readonly string[];
  /** Session token (give it as `auth: { token }` to another client, or keep it: `paxkv login`). */
  readonly token: string;
  readonly expiresAtMs: number;
}

/** The login handshake of {@link ClientAuth}, and the session it holds. */
export class LoginHandshake {
  private current: ClientSession | undefined;

  constructor(private readonly auth: ClientAuth) {}

  /** The session of the last successful login, if any. */
  get session(): ClientSession | undefined {
    return this.current;
  }

  /** The transport hook: logs in on every new connection. */
  readonly hook: Handshake = async (channel) => {
    const token =
      this.current && this.current.expiresAtMs > Date.now() + 5_000 ? this.current.token : undefined;
    if (token !== undefined) {
      const ok = await this.login(channel, { token }).catch((e: unknown) => {
        if ('password' in this.auth) return undefined; // the token was refused: try the password
        throw e;
      });
      if (ok) return ok;
    }
    return this.login(
      channel,
      'token' in this.auth
        ? { token: this.auth.token }
        : { user: this.auth.user, password: this.auth.password },
    );
  };

  private async login(
    channel: HandshakeChannel,
    credentials: { token: string } | { user: string; password: string },
  ): Promise<LoginOk> {
    channel.send({ type: 'login', id: 0, ...credentials });
    const reply = parseServerResponse(await channel.receive());
    if (!reply.ok)
      throw new UnauthenticatedError({ reason: 'the server answered the login with something unreadable' });
    const m = reply.value;
    if (m.type === 'login.ok') {
      this.current = { user: m.user, roles: m.roles, token: m.token, expiresAtMs: m.expiresAtMs };
      return m;
    }
    if (m.type === 'error') throw errorFromWire(m);
    throw new UnauthenticatedError({ reason: `the server answered the login with ${m.type}` });
  }
}
