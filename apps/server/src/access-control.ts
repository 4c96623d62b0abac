/**
 * Client authentication and authorisation (issue 14 part 5): logins, session tokens, user and role
 * management, and the check every client request passes at the server that received it.
 *
 * **Where users live.** In the kvstore itself, replicated like any data, under reserved keys that no
 * client request may name (`\u0000{auth}user/<name>`, `\u0000{auth}role/<name>`, `\u0000{auth}secret`,
 * see `@paxkv/common`'s `guardReservedKeys`). The `{auth}` hash tag puts them all in one partition, so
 * a listing is one range read and each change is one linearizable write; no second replicated store.
 * Records are JSON validated against `UserRecordSchema`/`RoleSchema` when read back.
 *
 * **Sessions.** `login` with a password (salted scrypt, constant-time compare) or a session token
 * binds the connection to the user and returns a fresh token: HMAC-SHA256 under a random secret that
 * the first server to need it creates (`set` if absent) in the same partition. Any server verifies a
 * token without state; the user's `generation` (raised by a password change) and its removal end it.
 * With TLS, a client certificate the cluster CA signed for client authentication, whose common name is
 * a user, logs the connection in as that user without a password (`loginWithCertificate`).
 *
 * **Checks.** With `--auth`, every client request on a connection is checked where it arrives, before
 * it is routed: `login` (and `lookup`/`status`, which carry no data) on an unauthenticated connection,
 * everything else needs a login, and a `kv` operation needs a role that allows each key it reads or
 * writes (`permits`). Forwarded requests come from authenticated peers and were checked at their
 * ingress. Users and roles are cached for `authCacheMs` (default 1 s): a revoked role or removed
 * user stops working on every server within that time.
 */

import { randomBytes } from 'node:crypto';
import {
  BadRequestError,
  BUILTIN_ROLES,
  type ClientRequest,
  hashPassword,
  type KvOp,
  type KvResult,
  type LoginOk,
  type LoginRequest,
  PrincipalNameSchema,
  RESERVED_KEY_PREFIX,
  type Role,
  type RoleRequest,
  SessionTokens,
  UnauthenticatedError,
  UnavailableError,
  type UserOk,
  type UserRecord,
  type UserRequest,
  verifyPassword,
} from '@paxkv/common';
import {
  type AccessControlOptions,
  asText,
  guardRequest,
  HashSlots,
  AUTH_KEY_PREFIX as PREFIX,
  type Principal,
  parseRoleRecord,
  parseUserRecord,
  readRootPasswordFile,
  requireLogin,
  requirePermission,
  roleKey,
  SECRET_KEY,
  userKey,
} from './auth-records.js';

export { type AccessControlOptions, type Principal, UNSAFE_AUTH_SKIP_PERMISSIONS } from './auth-records.js';

/** See the module comment. */
export class AccessControl {
  private secret: Buffer | null = null;
  private readonly users = new Map<string, { record: UserRecord | null; at: number }>();
  private readonly roles = new Map<string, { role: Role | null; at: number }>();
  private readonly hashSlots = new HashSlots();
  private readonly rootPassword: string | undefined;

  /**
   * @param run runs one internal KV operation through the request path (routing, forwarding), as the
   *   server itself: no permission check, reserved keys allowed.
   * @throws {ConfigError} if the root password file cannot be read or is too short.
   */
  constructor(
    private readonly options: AccessControlOptions,
    private readonly run: (op: KvOp) => Promise<KvResult>,
  ) {
    this.rootPassword =
      options.rootPasswordFile === undefined ? undefined : readRootPasswordFile(options.rootPasswordFile);
  }

  /** Whether requests are checked (`--auth`). */
  get enabled(): boolean {
    return this.options.enabled;
  }

  /**
   * Checks one client request from a connection authenticated as `principal` (null: not logged in)
   * and returns it as it must run (a range clamped past the reserved keys). Requests naming a reserved
   * key are refused whether authentication is on or not.
   * @throws {@link UnauthenticatedError} without a login, {@link PermissionDeniedError} when the roles
   *   do not allow it, {@link BadRequestError} for a reserved key.
   */
  async authorize(principal: Principal | null, request: ClientRequest): Promise<ClientRequest> {
    const guarded = this.guard(request);
    if (!this.options.enabled) return guarded;
    if (request.type === 'lookup' || request.type === 'status' || request.type === 'login') return guarded;
    const roles = await this.rolesOf(requireLogin(principal));
    requirePermission(roles, (principal as Principal).user, guarded);
    return guarded;
  }

  /**
   * The checks every request gets, access control on or off (what {@link authorize} returns when it is
   * off): no key of the reserved range (a range is clipped past it). Synchronous.
   * @throws {@link BadRequestError} for a reserved key.
   */
  guard(request: ClientRequest): ClientRequest {
    return guardRequest(request);
  }

  /**
   * Authenticates with a password or a token. Returns the principal and the `login.ok` reply.
   * @throws {@link UnauthenticatedError} (unknown user or wrong password: one message for both).
   */
  async login(request: LoginRequest): Promise<{ principal: Principal; reply: LoginOk }> {
    const hint = 'check the user name and password (paxkv login --user NAME --password-file FILE)';
    let record: UserRecord | null;
    if (request.token !== undefined) {
      const claim = SessionTokens.verify(await this.tokenSecret(), request.token, Date.now());
      record = await this.user(claim.user, true);
      if (!record || record.generation !== claim.generation) {
        throw new UnauthenticatedError({
          reason: 'the session token is no longer valid (the user was removed or changed its password)',
          hint: 'log in again',
        });
      }
    } else {
      const name = request.user as string;
      const password = request.password as string;
      record = await this.user(name, true);
      if (!record && name === 'root' && this.rootPassword !== undefined) record = await this.createRoot();
      const ok = await this.hashSlots.run(async () => {
        if (!record) {
          // Spend the same time as a real check, so timing does not tell which users exist.
          await hashPassword(password);
          return false;
        }
        return verifyPassword(record.password, password);
      });
      if (!ok || !record) throw new UnauthenticatedError({ reason: 'unknown user or wrong password', hint });
    }
    const expiresAtMs = Date.now() + this.options.tokenTtlMs;
    const token = SessionTokens.issue(await this.tokenSecret(), record.name, record.generation, expiresAtMs);
    return {
      principal: { user: record.name, generation: record.generation },
      reply: { type: 'login.ok', id: request.id, user: record.name, roles: record.roles, token, expiresAtMs },
    };
  }

  /**
   * Logs a TLS client in by its certificate (`--auth` with `--tls-*`): a certificate the cluster CA signed
   * for client authentication only (not a server's) whose common name is an existing user logs the
   * connection in as that user, no password asked; roles come from the user record, as for a password
   * login. Returns null when the certificate names no user (the connection then logs in as usual).
   * Issue such a certificate with `@paxkv/server/certs` `issueCertificate(ca, { commonName: user, usage: 'client' })`.
   */
  async loginWithCertificate(commonName: string): Promise<Principal | null> {
    if (!this.options.enabled || !PrincipalNameSchema.safeParse(commonName).success) return null;
    let record = await this.user(commonName, true);
    if (!record && commonName === 'root' && this.rootPassword !== undefined) record = await this.createRoot();
    return record ? { user: record.name, generation: record.generation } : null;
  }

  /** Runs a `user` or `role` request (already authorised by {@link AccessControl.authorize}). */
  async manage(request: UserRequest | RoleRequest): Promise<UserOk> {
    return request.type === 'user' ? this.manageUser(request) : this.manageRole(request);
  }

  // ---- users ----------------------------------------------------------------------------------

  private async manageUser(r: UserRequest): Promise<UserOk> {
    const ok: UserOk = { type: 'user.ok', id: r.id };
    const name = r.user as string;
    switch (r.action) {
      case 'list': {
        const result = await this.run({ op: 'range', start: userKey(''), end: `${PREFIX}user0` });
        if (result.op !== 'range') throw new UnavailableError({ reason: 'unexpected result listing users' });
        const users = result.kvs.flatMap((kv) => {
          const rec = kv.value === undefined ? null : parseUserRecord(asText(kv.value));
          return rec ? [{ name: rec.name, roles: rec.roles }] : [];
        });
        return { ...ok, users };
      }
      case 'add': {
        if (r.role !== undefined) await this.requireRole(r.role);
        const record: UserRecord = {
          name,
          password: await this.hashSlots.run(() => hashPassword(r.password as string)),
          roles: r.role !== undefined ? [r.role] : [],
          generation: 0,
        };
        const result = await this.run({
          op: 'set',
          key: userKey(name),
          value: JSON.stringify(record),
          condition: 'absent',
        });
        if (result.op !== 'set' || !result.applied)
          throw new BadRequestError({
            field: 'user',
            problem: `user ${name} exists; remove it first or change its password`,
          });
        this.users.delete(name);
        return ok;
      }
      case 'remove':
        await this.removeRecord(userKey(name), this.users, 'user', name);
        return ok;
      case 'passwd':
        await this.updateUser(name, async (u) => ({
          ...u,
          password: await this.hashSlots.run(() => hashPassword(r.password as string)),
          generation: u.generation + 1,
        }));
        return ok;
      case 'grant':
        await this.requireRole(r.role as string);
        await this.updateUser(name, (u) => ({ ...u, roles: [...new Set([...u.roles, r.role as string])] }));
        return ok;
      case 'revoke':
        await this.updateUser(name, (u) => ({ ...u, roles: u.roles.filter((x) => x !== r.role) }));
        return ok;
    }
  }

  /** Read-modify-write of one user, as a compare-and-set on the stored JSON (retried if it raced). */
  private async updateUser(
    name: string,
    change: (u: UserRecord) => UserRecord | Promise<UserRecord>,
  ): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const got = await this.run({ op: 'get', key: userKey(name) });
      if (got.op !== 'get' || got.value === null)
        throw new BadRequestError({ field: 'user', problem: `no user ${name}` });
      const before = asText(got.value);
      const current = parseUserRecord(before);
      if (!current) throw new UnavailableError({ reason: `the stored record of user ${name} is unreadable` });
      const next = await change(current);
      const result = await this.run({
        op: 'set',
        key: userKey(name),
        value: JSON.stringify(next),
        condition: 'equal',
        expected: before,
      });
      this.users.delete(name);
      if (result.op === 'set' && result.applied) return;
    }
    throw new UnavailableError({ reason: `user ${name} changed concurrently 5 times; try again` });
  }

  /** The stored user (cached for `cacheMs`; `fresh` reads the store). */
  private async user(name: string, fresh = false): Promise<UserRecord | null> {
    const cached = this.users.get(name);
    if (!fresh && cached && this.options.now() - cached.at < this.options.cacheMs) return cached.record;
    const got = await this.run({ op: 'get', key: userKey(name) });
    const record = got.op === 'get' && got.value !== null ? parseUserRecord(asText(got.value)) : null;
    if (this.users.size > 10_000) this.users.clear();
    this.users.set(name, { record, at: this.options.now() });
    return record;
  }

  private async createRoot(): Promise<UserRecord | null> {
    const record: UserRecord = {
      name: 'root',
      password: await this.hashSlots.run(() => hashPassword(this.rootPassword as string)),
      roles: ['admin'],
      generation: 0,
    };
    // If another server created it meanwhile, theirs stands (same password file, other salt).
    await this.run({ op: 'set', key: userKey('root'), value: JSON.stringify(record), condition: 'absent' });
    return this.user('root', true);
  }

  /** The roles of the logged-in user; refuses a user removed or whose password changed since. */
  private async rolesOf(principal: Principal): Promise<Role[]> {
    const record = await this.user(principal.user);
    if (!record || record.generation !== principal.generation) {
      throw new UnauthenticatedError({
        reason: `user ${principal.user} was removed or changed its password since this connection logged in`,
        hint: 'log in again',
      });
    }
    const roles: Role[] = [];
    for (const name of record.roles) {
      const role = await this.role(name);
      if (role) roles.push(role);
    }
    return roles;
  }

  // ---- roles ----------------------------------------------------------------------------------

  private async manageRole(r: RoleRequest): Promise<UserOk> {
    const ok: UserOk = { type: 'user.ok', id: r.id };
    const name = r.role as string;
    if (r.action !== 'list' && BUILTIN_ROLES.has(name))
      throw new BadRequestError({
        field: 'role',
        problem: `${name} is a built-in role; it cannot be changed`,
      });
    switch (r.action) {
      case 'list': {
        const result = await this.run({ op: 'range', start: roleKey(''), end: `${PREFIX}role0` });
        if (result.op !== 'range') throw new UnavailableError({ reason: 'unexpected result listing roles' });
        const stored = result.kvs.flatMap((kv) => {
          const role = kv.value === undefined ? null : parseRoleRecord(asText(kv.value));
          return role ? [role] : [];
        });
        return { ...ok, roles: [...BUILTIN_ROLES.values(), ...stored] };
      }
      case 'add': {
        const permissions = r.permissions ?? [];
        if (permissions.some((p) => p.prefix.startsWith(RESERVED_KEY_PREFIX)))
          throw new BadRequestError({
            field: 'permissions',
            problem: 'a permission cannot name reserved keys (\\u0000)',
          });
        const role: Role = { name, permissions };
        await this.run({ op: 'put', key: roleKey(name), value: JSON.stringify(role) });
        this.roles.delete(name);
        return ok;
      }
      case 'remove':
        await this.removeRecord(roleKey(name), this.roles, 'role', name);
        return ok;
    }
  }

  /** Deletes a stored user or role and forgets it; BAD_REQUEST when there was none. */
  private async removeRecord(
    key: string,
    cache: Map<string, unknown>,
    field: 'user' | 'role',
    name: string,
  ): Promise<void> {
    const result = await this.run({ op: 'delete', key });
    cache.delete(name);
    if (result.op === 'delete' && !result.existed)
      throw new BadRequestError({ field, problem: `no ${field} ${name}` });
  }

  private async role(name: string): Promise<Role | null> {
    const builtin = BUILTIN_ROLES.get(name);
    if (builtin) return builtin;
    const cached = this.roles.get(name);
    if (cached && this.options.now() - cached.at < this.options.cacheMs) return cached.role;
    const got = await this.run({ op: 'get', key: roleKey(name) });
    const role = got.op === 'get' && got.value !== null ? parseRoleRecord(asText(got.value)) : null;
    if (this.roles.size > 10_000) this.roles.clear();
    this.roles.set(name, { role, at: this.options.now() });
    return role;
  }

  private async requireRole(name: string): Promise<void> {
    if (!(await this.role(name)))
      throw new BadRequestError({ field: 'role', problem: `no role ${name}; make it with paxkv role add` });
  }

  // ---- secret and hashing slots ---------------------------------------------------------------

  private async tokenSecret(): Promise<Buffer> {
    if (this.secret) return this.secret;
    const fresh = randomBytes(32).toString('base64');
    await this.run({ op: 'set', key: SECRET_KEY, value: fresh, condition: 'absent' });
    const got = await this.run({ op: 'get', key: SECRET_KEY });
    if (got.op !== 'get' || got.value === null)
      throw new UnavailableError({ reason: 'the session token secret could not be read back' });
    this.secret = Buffer.from(asText(got.value), 'base64');
    return this.secret;
  }
}
