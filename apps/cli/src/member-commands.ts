/**
 * Membership commands (as etcdctl's `member`): `paxkv member list`, `paxkv member add <host:port>` and
 * `paxkv member remove <id>`. Any server answers `list` from its copy of the cluster metadata; `add` and
 * `remove` are forwarded by the server to the metadata group's leader, where they become a new
 * version of the metadata (see `metadata-group.ts` in `@paxkv/server`).
 */
import {
  type ClusterMetadata,
  errorFromWire,
  isAddress,
  type MemberListOk,
  type MemberOk,
  type ServerResponse,
} from '@paxkv/common';
import { type Command, InvalidArgumentError } from 'commander';
import { EXIT } from './execute.js';
import { ProbeError, probe } from './probe.js';
import { CREDENTIAL_ERRORS, clientSecurity, loggedInRequest } from './security-commands.js';
import { type OutputFormat, renderSimple, renderTable } from './views.js';

/** What the member commands need from the program. */
export interface MemberCommandDeps {
  readonly io: { readonly stdout: NodeJS.WritableStream; readonly stderr: NodeJS.WritableStream };
  /** The servers to ask, in order (throws a usage error when none is configured). */
  servers(): string[];
  /** The per-request deadline, in ms. */
  timeoutMs(): number;
  /** The output format (`-w`, `--json`). */
  format(): OutputFormat;
  /** Sets the program's exit code. */
  setExitCode(code: number): void;
}

/** Error codes after which the same request is sent again (an election, a server starting). */
const RETRYABLE = new Set(['UNAVAILABLE', 'TIMEOUT', 'NO_LEADER', 'NOT_LEADER', 'NOT_READY']);
/** Pause between two rounds over the servers, in ms. */
const RETRY_PAUSE_MS = 200;

/** A member as `member list` prints it. */
export interface MemberRow {
  readonly id: number;
  readonly address: string;
  /** `alive`, `spare`, `suspected` (as the answering server sees it), or `draining`. */
  readonly state: string;
  /** Number of partitions whose group includes it. */
  readonly replicas: number;
  /** Whether it is a replica of the metadata group. */
  readonly metadata: boolean;
}

/** The rows of `member list` from a `member.list.ok` answer. */
export function memberRows(reply: MemberListOk): MemberRow[] {
  const m = reply.metadata;
  return reply.members.map((x) => ({
    id: x.id,
    address: x.address,
    state: m?.draining.includes(x.id) ? 'draining' : x.state,
    replicas: m ? m.table.groups.filter((g) => g.replicas.includes(x.id)).length : 0,
    metadata: m?.metaReplicas.includes(x.id) ?? false,
  }));
}

/** The text of `member list` in `format`. */
export function formatMemberList(reply: MemberListOk, format: OutputFormat): string {
  const rows = memberRows(reply);
  const m = reply.metadata as ClusterMetadata;
  if (format === 'json') {
    return JSON.stringify({
      version: m.table.version,
      metaReplicas: m.metaReplicas,
      members: rows,
      draining: m.draining,
      moving: m.moving,
    });
  }
  const cells = rows.map((r) => [
    String(r.id),
    r.address,
    r.state,
    String(r.replicas),
    r.metadata ? 'yes' : 'no',
  ]);
  if (format === 'simple') return renderSimple(cells);
  const moving = m.moving.map(
    (x) => `partition ${x.partition}: node ${x.from} -> node ${x.to} (${x.reason})`,
  );
  return [
    renderTable(['ID', 'ADDRESS', 'STATE', 'REPLICAS', 'METADATA'], cells),
    `metadata v${m.table.version}, replicated on nodes ${m.metaReplicas.join(', ')}`,
    ...(moving.length > 0 ? [`moving: ${moving.join('; ')}`] : []),
  ].join('\n');
}

/** A node id from the command line. */
export function parseNodeId(raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) {
    throw new InvalidArgumentError(`a node id is a positive integer (see paxkv member list), got "${raw}"`);
  }
  return Number(raw);
}

/** A server address from the command line. */
export function parseMemberAddress(raw: string): string {
  if (!isAddress(raw)) {
    throw new InvalidArgumentError(
      `expected host:port of the new server, for example 127.0.0.1:7004, got "${raw}"`,
    );
  }
  return raw;
}

class MemberCommandError extends Error {}

/**
 * Sends `request` to the servers in turn until one gives an answer `accept` takes or a final error;
 * retryable errors and unreachable servers move on to the next server, for up to the deadline.
 */
async function ask<T>(
  deps: MemberCommandDeps,
  request: { type: string; id: number } & Record<string, unknown>,
  accept: (reply: ServerResponse) => T | undefined,
): Promise<T> {
  const servers = deps.servers();
  const timeoutMs = deps.timeoutMs();
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    for (const address of servers) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let reply: ServerResponse;
      try {
        reply = await sendOnce(address, request, left);
      } catch (e) {
        // A refused login or certificate is the cluster's answer: another server says the same.
        if (CREDENTIAL_ERRORS.has(String((e as { code?: unknown }).code))) throw e;
        last = e instanceof ProbeError ? e.message : String((e as Error).message ?? e);
        continue;
      }
      const value = accept(reply);
      if (value !== undefined) return value;
      if (reply.type === 'error') {
        if (!RETRYABLE.has(reply.code)) throw errorFromWire(reply);
        last = `${address}: ${reply.message}`;
      } else {
        last = `${address} answered ${reply.type}`;
      }
    }
    if (Date.now() + RETRY_PAUSE_MS >= deadline) break;
    await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
  }
  throw new MemberCommandError(
    `no server could answer within ${timeoutMs} ms (${last || 'no server asked'}); is the cluster running? raise --timeout while it elects leaders`,
  );
}

/**
 * `member add <address>` as a call: asks `servers` in turn (retrying elections) until one records the
 * member; resolves with the answer (node id, metadata version).
 * @throws the server's typed error when the change is refused, or an error saying no server answered
 */
export function requestMemberAdd(
  servers: readonly string[],
  timeoutMs: number,
  address: string,
): Promise<MemberOk> {
  return ask(
    {
      io: { stdout: process.stdout, stderr: process.stderr },
      servers: () => [...servers],
      timeoutMs: () => timeoutMs,
      format: () => 'table',
      setExitCode: () => {},
    },
    { type: 'member.add', id: 1, address },
    okOf,
  );
}

/**
 * One request to one server. With a login configured (--user, a saved session token) it goes over a
 * logged-in connection: member.add/remove need the admin role on a cluster started with --auth.
 */
async function sendOnce(
  address: string,
  request: { type: string; id: number } & Record<string, unknown>,
  timeoutMs: number,
): Promise<ServerResponse> {
  return clientSecurity().auth
    ? (await loggedInRequest(address, request, timeoutMs)).reply
    : probe(address, request, timeoutMs);
}

/** Longest wait for one server in the first, parallel round of {@link newestMemberList}, in ms. */
const PARALLEL_ASK_MS = 3_000;

/**
 * `member.list` answered from the NEWEST metadata any server holds: every server answers from its own
 * copy, and a copy can lag the metadata group by a refresh (a `member add` just acknowledged by the
 * group's leader is not yet on every server). Asks every server at once and keeps the highest version;
 * when none answers, retries like {@link ask}.
 */
export async function newestMemberList(deps: MemberCommandDeps): Promise<MemberListOk> {
  const request = { type: 'member.list', id: 1 };
  const wait = Math.min(deps.timeoutMs(), PARALLEL_ASK_MS);
  const replies = await Promise.all(
    deps.servers().map(async (address): Promise<MemberListOk | undefined> => {
      try {
        const r = await sendOnce(address, request, wait);
        return r.type === 'member.list.ok' && r.metadata ? r : undefined;
      } catch (e) {
        if (CREDENTIAL_ERRORS.has(String((e as { code?: unknown }).code))) throw e;
        return undefined;
      }
    }),
  );
  let best: MemberListOk | undefined;
  for (const r of replies) {
    if (r?.metadata && (!best?.metadata || r.metadata.table.version > best.metadata.table.version)) best = r;
  }
  return best ?? ask(deps, request, (r) => (r.type === 'member.list.ok' && r.metadata ? r : undefined));
}

/** Registers `member list|add|remove` on `program`. */
export function registerMemberCommands(program: Command, deps: MemberCommandDeps): Command {
  const run = (name: string, body: () => Promise<void>) => async () => {
    try {
      await body();
    } catch (e) {
      deps.io.stderr.write(`paxkv member ${name}: ${(e as Error).message}\n`);
      deps.setExitCode(EXIT.error);
    }
  };
  const member = program
    .command('member')
    .description('cluster membership: list the servers, add a server, remove (drain) a server');
  member
    .command('list')
    .description(
      'the members of the cluster: node id, address, state (alive, spare, suspected, draining), replicas held, metadata replica; then the metadata version and moves in progress',
    )
    .action(
      run('list', async () => {
        const reply = await newestMemberList(deps);
        deps.io.stdout.write(`${formatMemberList(reply, deps.format())}\n`);
      }),
    );
  member
    .command('add')
    .description(
      'add the server at <host:port> as a member (a spare until replicas move onto it); start it with --join <any member> (it keeps the id given here)',
    )
    .argument('<host:port>', 'where the new server listens', parseMemberAddress)
    .action((address: string) =>
      run('add', async () => {
        const ok = await ask(deps, { type: 'member.add', id: 1, address }, okOf);
        write(
          deps,
          ok,
          `node ${ok.node} (${ok.address}) is a member (metadata v${ok.version}); start it with --join <any member> if it is not running`,
        );
      })(),
    );
  member
    .command('remove')
    .description(
      'remove member <id>: a spare leaves at once; a server holding replicas is drained first (its replicas move, one group at a time), then leaves',
    )
    .argument('<id>', 'node id (see paxkv member list)', parseNodeId)
    .action((node: number) =>
      run('remove', async () => {
        const ok = await ask(deps, { type: 'member.remove', id: 1, node }, okOf);
        write(
          deps,
          ok,
          ok.state === 'removed'
            ? `node ${ok.node} (${ok.address}) removed (metadata v${ok.version}); stop its process`
            : `node ${ok.node} (${ok.address}) is draining: its replicas move to other servers one group at a time, then it leaves (follow with paxkv member list)`,
        );
      })(),
    );
  return member;
}

function okOf(reply: ServerResponse): MemberOk | undefined {
  return reply.type === 'member.ok' ? reply : undefined;
}

function write(deps: MemberCommandDeps, ok: MemberOk, text: string): void {
  const { type: _type, id: _id, ...rest } = ok;
  deps.io.stdout.write(`${deps.format() === 'json' ? JSON.stringify(rest) : text}\n`);
}
