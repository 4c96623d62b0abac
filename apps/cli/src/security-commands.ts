/**
 * TLS and logins for every command, and the commands that manage them: `paxkv login`, `paxkv user
 * add|remove|list|grant|revoke|passwd`, `paxkv role add|remove|list`.
 *
 * Where the settings come from (first found wins):
 * - TLS: `--cacert/--cert/--key`, then `PAXKV_CACERT/PAXKV_CERT/PAXKV_KEY`, then the CA of a local
 *   cluster started with `paxkv cluster start --tls` (`<dir>/tls/ca.pem`).
 * - Login: `--user` with `--password-file` (or `PAXKV_USER`/`PAXKV_PASSWORD_FILE`), then the session
 *   token `paxkv login` saved (`--token-file`, `PAXKV_TOKEN_FILE`, default `~/.config/paxkv/token`).
 *
 * The settings are kept for the process ({@link configureSecurity}) so that every way the CLI reaches
 * a cluster (the client, the status probe) uses them without each call site threading them through.
 * @module
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type ClientAuth, type ClientSession, LoginHandshake } from '@paxkv/client';
import {
  errorFromWire,
  parseServerResponse,
  ReconnectingConnection,
  type ServerResponse,
  type TlsOptions,
} from '@paxkv/common';
import { type Command, Option } from 'commander';

/** TLS and login settings of this CLI process. */
export interface ConnectionSecurity {
  readonly tls?: TlsOptions;
  readonly auth?: ClientAuth;
}

let current: ConnectionSecurity = {};

/** The settings in force (spread them into `createClient` options). */
export function clientSecurity(): ConnectionSecurity {
  return current;
}

/** Global flags of the security settings (added to the `paxkv` program). */
export function addSecurityOptions(program: Command): Command {
  return program
    .addOption(
      new Option(
        '--cacert <file>',
        "PEM CA that signed the servers' certificates: dial with TLS ($PAXKV_CACERT)",
      ),
    )
    .addOption(new Option('--cert <file>', 'PEM client certificate ($PAXKV_CERT)'))
    .addOption(new Option('--key <file>', 'PEM private key of --cert ($PAXKV_KEY)'))
    .addOption(new Option('--user <name>', 'log in as this user ($PAXKV_USER); with --password-file'))
    .addOption(
      new Option('--password-file <file>', 'file holding the password of --user ($PAXKV_PASSWORD_FILE)'),
    )
    .addOption(
      new Option(
        '--token-file <file>',
        'session token saved by paxkv login ($PAXKV_TOKEN_FILE, default ~/.config/paxkv/token)',
      ),
    );
}

/** The flags {@link addSecurityOptions} adds, as commander parses them. */
export interface SecurityFlags {
  readonly cacert?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly user?: string;
  readonly passwordFile?: string;
  readonly tokenFile?: string;
}

/** Thrown for unusable security settings; the message says what to fix. */
export class SecurityConfigError extends Error {
  override readonly name = 'SecurityConfigError';
}

function readOrFail(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new SecurityConfigError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** Where `paxkv login` keeps the session token. */
export function tokenFile(flags: SecurityFlags, env: Readonly<Record<string, string | undefined>>): string {
  return flags.tokenFile ?? env.PAXKV_TOKEN_FILE ?? join(homedir(), '.config', 'paxkv', 'token');
}

/** The CA file of a local cluster started with `--tls`, if there is one in `clusterDir`. */
export function localClusterCa(clusterDir: string): string | undefined {
  const ca = join(clusterDir, 'tls', 'ca.pem');
  return existsSync(ca) ? ca : undefined;
}

/**
 * Resolves the TLS and login settings from flags, environment and the local cluster directory, and
 * keeps them for the process. `withSavedToken: false` ignores the saved token (for `paxkv login`).
 * @throws {SecurityConfigError} for an unreadable file or an incomplete pair.
 */
export function configureSecurity(
  flags: SecurityFlags,
  env: Readonly<Record<string, string | undefined>>,
  clusterDir: string,
  withSavedToken = true,
): ConnectionSecurity {
  const caFile = flags.cacert ?? env.PAXKV_CACERT ?? localClusterCa(clusterDir);
  const certFile = flags.cert ?? env.PAXKV_CERT;
  const keyFile = flags.key ?? env.PAXKV_KEY;
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new SecurityConfigError('give --cert and --key together');
  if (certFile !== undefined && caFile === undefined)
    throw new SecurityConfigError('a client certificate needs --cacert (the CA that signed the servers)');
  const tls: TlsOptions | undefined =
    caFile === undefined
      ? undefined
      : {
          ca: readOrFail(caFile, 'the CA file'),
          ...(certFile !== undefined ? { cert: readOrFail(certFile, 'the certificate') } : {}),
          ...(keyFile !== undefined ? { key: readOrFail(keyFile, 'the key') } : {}),
        };
  const user = flags.user ?? env.PAXKV_USER;
  const passwordFile = flags.passwordFile ?? env.PAXKV_PASSWORD_FILE;
  let auth: ClientAuth | undefined;
  if (user !== undefined) {
    if (passwordFile === undefined)
      throw new SecurityConfigError(
        `--user ${user} needs --password-file (a password never goes on the command line)`,
      );
    auth = { user, password: readOrFail(passwordFile, 'the password file').replace(/\r?\n$/, '') };
  } else if (withSavedToken) {
    const saved = tokenFile(flags, env);
    if (existsSync(saved)) auth = { token: readOrFail(saved, 'the token file').trim() };
  }
  current = { ...(tls ? { tls } : {}), ...(auth ? { auth } : {}) };
  return current;
}

/**
 * Sends one request to `address` over a connection logged in with the settings in force (TLS too), and
 * resolves with the reply, an `error` reply included. Rejects when the login is refused (its typed
 * error: UNAUTHENTICATED, ...), on a TLS failure, or when no answer comes within `timeoutMs`.
 */
export async function loggedInRequest(
  address: string,
  message: Record<string, unknown>,
  timeoutMs: number,
): Promise<{ reply: ServerResponse; session: ClientSession | undefined }> {
  const login = current.auth ? new LoginHandshake(current.auth) : undefined;
  const conn = new ReconnectingConnection(address, {
    connectTimeoutMs: Math.min(timeoutMs, 3000),
    ...(current.tls ? { tls: current.tls } : {}),
    ...(login ? { handshake: login.hook } : {}),
  });
  try {
    await conn.waitConnected(timeoutMs);
    const reply = await new Promise<ServerResponse>((resolveReply, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no answer from ${address} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      conn.on('message', (m) => {
        const parsed = parseServerResponse(m);
        if (parsed.ok && parsed.value.id === 1) {
          clearTimeout(timer);
          resolveReply(parsed.value);
        }
      });
      conn.send({ ...message, id: 1 });
    });
    return { reply, session: login?.session };
  } finally {
    conn.close();
  }
}

/** Error codes that are the cluster's answer about the caller's credentials: another server says the same. */
export const CREDENTIAL_ERRORS: ReadonlySet<string> = new Set([
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'TLS_FAILED',
]);

/**
 * Sends one request to the first of `servers` that answers, over a connection logged in with the
 * settings in force, and resolves with the reply (an `error` reply is thrown as its typed error).
 */
export async function securedRequest(
  servers: readonly string[],
  message: Record<string, unknown>,
  timeoutMs: number,
): Promise<{ reply: ServerResponse; session: ClientSession | undefined }> {
  let last: unknown;
  for (const address of servers) {
    try {
      const answer = await loggedInRequest(address, message, timeoutMs);
      if (answer.reply.type === 'error') throw errorFromWire(answer.reply);
      return answer;
    } catch (e) {
      last = e;
      const code = String((e as { code?: unknown }).code);
      // A refusal is the cluster's answer: another server would say the same.
      if (CREDENTIAL_ERRORS.has(code) || code === 'BAD_REQUEST') throw e;
    }
  }
  throw last;
}

/** What the security commands need from the CLI. */
export interface SecurityCommandDeps {
  /** The servers to talk to (throws a usage error when none is configured). */
  readonly servers: () => string[];
  readonly timeoutMs: () => number;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly flags: () => SecurityFlags;
  readonly clusterDir: () => string;
  readonly stdin: NodeJS.ReadableStream;
  readonly out: (line: string) => void;
  readonly json: () => boolean;
}

async function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
}

/** A password from `--password-file` or the first line of stdin. */
async function passwordOf(file: string | undefined, deps: SecurityCommandDeps): Promise<string> {
  if (file !== undefined) return readOrFail(file, 'the password file').replace(/\r?\n$/, '');
  const line = await firstLine(deps.stdin);
  if (line === '')
    throw new SecurityConfigError('give the password with --password-file or on the first line of stdin');
  return line;
}

/** Registers `login`, `user ...` and `role ...` on `program`. */
export function registerSecurityCommands(program: Command, deps: SecurityCommandDeps): void {
  const run = async (message: Record<string, unknown>) => {
    configureSecurity(deps.flags(), deps.env, deps.clusterDir());
    return securedRequest(deps.servers(), message, deps.timeoutMs());
  };
  const done = (what: string, extra: Record<string, unknown> = {}) =>
    deps.out(deps.json() ? JSON.stringify({ ok: true, command: what, ...extra }) : 'OK');

  program
    .command('login')
    .description('log in and save the session token for later commands (--user, --password-file or stdin)')
    .action(async () => {
      const flags = deps.flags();
      const user = flags.user ?? deps.env.PAXKV_USER;
      if (user === undefined) throw new SecurityConfigError('paxkv login needs --user NAME');
      const password = await passwordOf(flags.passwordFile ?? deps.env.PAXKV_PASSWORD_FILE, deps);
      const { user: _ignored, ...others } = flags;
      const security = configureSecurity(
        others,
        { ...deps.env, PAXKV_USER: undefined },
        deps.clusterDir(),
        false,
      );
      current = { ...security, auth: { user, password } };
      const { session } = await securedRequest(deps.servers(), { type: 'status' }, deps.timeoutMs());
      if (!session) throw new SecurityConfigError('the server did not return a session');
      const file = tokenFile(flags, deps.env);
      mkdirSync(dirname(resolve(file)), { recursive: true, mode: 0o700 });
      writeFileSync(file, `${session.token}\n`, { mode: 0o600 });
      const expires = new Date(session.expiresAtMs).toISOString();
      deps.out(
        deps.json()
          ? JSON.stringify({
              ok: true,
              command: 'login',
              user: session.user,
              roles: session.roles,
              expires,
              tokenFile: file,
            })
          : `logged in as ${session.user} (roles: ${session.roles.join(', ') || 'none'}); token saved in ${file}, valid until ${expires}`,
      );
    });

  const user = program.command('user').description('manage users (admins; a cluster started with --auth)');
  user
    .command('add <name>')
    .description('add a user (password from --password-file or the first line of stdin)')
    .option('--role <role>', 'grant this role at once (admin, readwrite, read or one made with role add)')
    .option('--new-password-file <file>', "file holding the new user's password")
    .action(async (name: string, o: { role?: string; newPasswordFile?: string }) => {
      const password = await passwordOf(o.newPasswordFile, deps);
      await run({ type: 'user', action: 'add', user: name, password, ...(o.role ? { role: o.role } : {}) });
      done('user add');
    });
  user
    .command('remove <name>')
    .description('remove a user (its sessions end)')
    .action(async (name: string) => {
      await run({ type: 'user', action: 'remove', user: name });
      done('user remove');
    });
  user
    .command('list')
    .description('list users and their roles')
    .action(async () => {
      const { reply } = await run({ type: 'user', action: 'list' });
      const users = reply.type === 'user.ok' ? (reply.users ?? []) : [];
      if (deps.json()) deps.out(JSON.stringify({ ok: true, command: 'user list', users }));
      else for (const u of users) deps.out(`${u.name}\t${u.roles.join(',')}`);
    });
  for (const action of ['grant', 'revoke'] as const) {
    user
      .command(`${action} <name> <role>`)
      .description(`${action} a role ${action === 'grant' ? 'to' : 'from'} a user`)
      .action(async (name: string, role: string) => {
        await run({ type: 'user', action, user: name, role });
        done(`user ${action}`);
      });
  }
  user
    .command('passwd <name>')
    .description("change a user's password (its sessions end); from --new-password-file or stdin")
    .option('--new-password-file <file>', 'file holding the new password')
    .action(async (name: string, o: { newPasswordFile?: string }) => {
      const password = await passwordOf(o.newPasswordFile, deps);
      await run({ type: 'user', action: 'passwd', user: name, password });
      done('user passwd');
    });

  const role = program.command('role').description('manage roles (admins)');
  role
    .command('add <name>')
    .description('make (or replace) a role granting key prefixes')
    .option('--read <prefix...>', 'read keys starting with these prefixes')
    .option('--readwrite <prefix...>', 'read and write keys starting with these prefixes')
    .action(async (name: string, o: { read?: string[]; readwrite?: string[] }) => {
      const permissions = [
        ...(o.read ?? []).map((prefix) => ({ prefix, access: 'read' })),
        ...(o.readwrite ?? []).map((prefix) => ({ prefix, access: 'readwrite' })),
      ];
      if (permissions.length === 0)
        throw new SecurityConfigError('role add needs --read or --readwrite prefixes');
      await run({ type: 'role', action: 'add', role: name, permissions });
      done('role add');
    });
  role
    .command('remove <name>')
    .description('remove a role')
    .action(async (name: string) => {
      await run({ type: 'role', action: 'remove', role: name });
      done('role remove');
    });
  role
    .command('list')
    .description('list roles and what they grant')
    .action(async () => {
      const { reply } = await run({ type: 'role', action: 'list' });
      const roles = reply.type === 'user.ok' ? (reply.roles ?? []) : [];
      if (deps.json()) deps.out(JSON.stringify({ ok: true, command: 'role list', roles }));
      else
        for (const r of roles)
          deps.out(
            `${r.name}\t${r.admin ? 'admin ' : ''}${r.permissions.map((p) => `${p.access}:${JSON.stringify(p.prefix)}`).join(' ')}`,
          );
    });
}
