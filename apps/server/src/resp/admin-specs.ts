import { TxnOpSchema } from '@paxkv/common';
import {
  ALL_KEYS,
  all,
  arityError,
  type CommandSpec,
  inTwoUnits,
  keyArg,
  type MultiState,
  NO_KEYS,
  ONE_KEY,
  RespCommandError,
  subcommandError,
  unexpected,
  upper,
} from './command-context.js';
import { NULL_ARRAY, OK, R, type RespValue } from './encoder.js';
import { runTxn } from './multi.js';
import { scan } from './scan.js';
import {
  commandDocs,
  commandInfo,
  dbsize,
  infoText,
  keysWithTtl,
  validClientName,
} from './server-commands.js';
import { expireCommand, persistCommand, setexCommand, ttlCommand } from './string-commands.js';

/**
 * The server, connection and transaction commands; `commands` reads the whole table (for `COMMAND`).
 */
export function adminSpecs(commands: () => ReadonlyMap<string, CommandSpec>): CommandSpec[] {
  return [
    {
      name: 'dbsize',
      arity: 1,
      flags: ['readonly', 'fast'],
      keys: NO_KEYS,
      barrier: true,
      run: async (ctx) => R.int(await dbsize(ctx)),
    },
    {
      name: 'info',
      arity: -1,
      flags: ['loading', 'stale'],
      keys: NO_KEYS,
      barrier: true,
      run: async (ctx, args) => {
        const sections = new Set(args.slice(1).map((a) => a.toString('latin1').toLowerCase()));
        const keyspace = sections.has('keyspace') || sections.has('all') || sections.has('everything');
        return R.bulk(
          infoText(
            ctx,
            sections,
            keyspace ? { keys: await dbsize(ctx), expires: await keysWithTtl(ctx) } : null,
          ),
        );
      },
    },
    {
      name: 'command',
      arity: -1,
      flags: ['loading', 'stale'],
      keys: NO_KEYS,
      run: (_ctx, args) => {
        const sub = upper(args[1]);
        if (args.length === 1) return R.array([...commands().values()].map(commandInfo));
        if (sub === 'COUNT') return R.int(commands().size);
        if (sub === 'INFO') {
          const names =
            args.length > 2
              ? args.slice(2).map((a) => a.toString('latin1').toLowerCase())
              : [...commands().keys()];
          return R.array(
            names.map((n) => {
              const spec = commands().get(n);
              return spec ? commandInfo(spec) : NULL_ARRAY;
            }),
          );
        }
        if (sub === 'DOCS') {
          const names =
            args.length > 2
              ? args.slice(2).map((a) => a.toString('latin1').toLowerCase())
              : [...commands().keys()];
          return R.map(
            names.flatMap((n) => {
              const spec = commands().get(n);
              return spec ? [commandDocs(spec)] : [];
            }),
          );
        }
        if (sub === 'LIST') return R.array([...commands().keys()].map((n) => R.bulk(n)));
        throw subcommandError(args[1] as Buffer, 'COMMAND');
      },
    },
    {
      name: 'client',
      arity: -2,
      flags: ['noscript', 'loading', 'stale'],
      keys: NO_KEYS,
      run: (ctx, args) => {
        const sub = upper(args[1]);
        switch (sub) {
          case 'ID':
            if (args.length !== 2) throw arityError('client|id');
            return R.int(ctx.client.id);
          case 'GETNAME':
            if (args.length !== 2) throw arityError('client|getname');
            return R.bulkOrNull(ctx.client.name);
          case 'SETNAME': {
            if (args.length !== 3) throw arityError('client|setname');
            const n = args[2] as Buffer;
            if (!validClientName(n)) {
              throw new RespCommandError(
                'ERR Client names cannot contain spaces, newlines or special characters.',
              );
            }
            ctx.client.name = n.length === 0 ? null : n.toString('latin1');
            return OK;
          }
          case 'SETINFO':
            if (args.length !== 4) throw arityError('client|setinfo');
            return OK;
          case 'INFO':
            return R.bulk(
              `id=${ctx.client.id} addr=${ctx.client.remote} name=${ctx.client.name ?? ''} db=0 resp=${ctx.client.proto}\n`,
            );
          default:
            throw subcommandError(args[1] as Buffer, 'CLIENT');
        }
      },
    },
    {
      name: 'config',
      arity: -2,
      flags: ['admin', 'noscript', 'loading', 'stale'],
      keys: NO_KEYS,
      run: (_ctx, args) => {
        // Tools read a few settings at start (redis-benchmark reads `save` and `appendonly`); paxkv has
        // none of Redis's settings, so every pattern matches nothing, as an unknown setting does in Redis.
        if (upper(args[1]) === 'GET' && args.length >= 3) return R.map([]);
        throw subcommandError(args[1] as Buffer, 'CONFIG');
      },
    },
    {
      name: 'time',
      arity: 1,
      flags: ['loading', 'stale', 'fast'],
      keys: NO_KEYS,
      run: () => {
        const us = BigInt(Date.now()) * 1000n;
        return R.array([R.bulk(String(us / 1_000_000n)), R.bulk(String(us % 1_000_000n))]);
      },
    },
    {
      name: 'multi',
      arity: 1,
      flags: ['noscript', 'loading', 'stale', 'fast'],
      keys: NO_KEYS,
      run: (ctx) => {
        if (ctx.client.multi) throw new RespCommandError('ERR MULTI calls can not be nested');
        ctx.client.multi = { queued: [], ops: 0, bytes: 0, failed: false };
        return OK;
      },
    },
    {
      name: 'discard',
      arity: 1,
      flags: ['noscript', 'loading', 'stale', 'fast'],
      keys: NO_KEYS,
      run: (ctx) => {
        if (!ctx.client.multi) throw new RespCommandError('ERR DISCARD without MULTI');
        ctx.client.multi = null;
        ctx.client.watched = new Map();
        return OK;
      },
    },
    {
      name: 'watch',
      arity: -2,
      flags: ['noscript', 'loading', 'stale', 'fast'],
      keys: ALL_KEYS,
      run: async (ctx, args) => {
        if (ctx.client.multi) throw new RespCommandError('ERR WATCH inside MULTI is not allowed');
        const keys = args.slice(1).map((k) => keyArg(k, ctx));
        const results = await all(
          ctx,
          keys.map((key) => ({ op: 'get', key })),
        );
        keys.forEach((key, i) => {
          const r = results[i];
          if (r?.op === 'get' && !ctx.client.watched.has(key)) ctx.client.watched.set(key, r.modRevision);
        });
        return OK;
      },
    },
    {
      name: 'unwatch',
      arity: 1,
      flags: ['noscript', 'loading', 'stale', 'fast'],
      keys: NO_KEYS,
      run: (ctx) => {
        ctx.client.watched = new Map();
        return OK;
      },
    },
    {
      name: 'exec',
      arity: 1,
      flags: ['noscript', 'loading', 'stale', 'skip_slowlog'],
      keys: NO_KEYS,
      barrier: true,
      prepare: (ctx) => {
        const m = ctx.client.multi;
        ctx.client.multi = null;
        return m;
      },
      run: async (ctx, _args, prepared) => {
        const m = prepared as MultiState | null;
        if (!m) throw new RespCommandError('ERR EXEC without MULTI');
        const watched = ctx.client.watched;
        ctx.client.watched = new Map();
        if (m.failed)
          throw new RespCommandError('EXECABORT Transaction discarded because of previous errors.');
        const success = m.queued.flatMap((q) => q.ops);
        if (success.length === 0 && watched.size === 0) return R.array([]);
        const compare = [...watched].map(([key, rev]) => ({
          key,
          target: 'modRevision' as const,
          op: '=' as const,
          value: rev,
        }));
        // The protocol's own check (a key written at most once per branch), as at the native port's boundary.
        const txn = TxnOpSchema.safeParse({ op: 'txn', compare, success, failure: [] });
        if (!txn.success)
          throw new RespCommandError(`ERR ${txn.error.issues[0]?.message ?? 'invalid transaction'}`);
        const r = await runTxn(ctx, txn.data);
        if (r.op !== 'txn') throw unexpected(r);
        if (!r.succeeded) return NULL_ARRAY;
        const replies: RespValue[] = [];
        let at = 0;
        for (const q of m.queued) {
          replies.push(q.reply(r.results.slice(at, at + q.ops.length)));
          at += q.ops.length;
        }
        return R.array(replies);
      },
    },
    {
      name: 'scan',
      arity: -2,
      flags: ['readonly'],
      keys: NO_KEYS,
      barrier: true,
      run: scan,
    },
    ...inTwoUnits('expire', 'pexpire', { arity: -3, flags: ['write', 'fast'], keys: ONE_KEY }, expireCommand),
    ...inTwoUnits('ttl', 'pttl', { arity: 2, flags: ['readonly', 'fast'], keys: ONE_KEY }, ttlCommand),
    { name: 'persist', arity: 2, flags: ['write', 'fast'], keys: ONE_KEY, run: persistCommand },
    ...inTwoUnits('setex', 'psetex', { arity: 4, flags: ['write', 'denyoom'], keys: ONE_KEY }, setexCommand),
  ];
}
