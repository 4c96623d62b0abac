import {
  ALL_KEYS,
  all,
  arityError,
  type CommandContext,
  type CommandSpec,
  INT64_MIN,
  int64Arg,
  keyArg,
  NO_KEYS,
  ONE_KEY,
  RespCommandError,
  unexpected,
  upper,
  valueArg,
} from './command-context.js';
import { NULL, OK, R } from './encoder.js';
import { onePartition } from './multi.js';
import { helloReply, NO_AUTH, validClientName } from './server-commands.js';
import { conditionalSet, incrBy, setCommand } from './string-commands.js';

/** The data commands. */
/**
 * Logs the connection in as `user` (`AUTH`, `HELLO ... AUTH`): the principal is kept for every later
 * command. A refusal is Redis's WRONGPASS (one answer for an unknown user and a wrong password).
 */
async function loginAs(ctx: CommandContext, user: string, password: string): Promise<void> {
  try {
    ctx.client.principal = await ctx.backend.login!(user, password);
  } catch {
    throw new RespCommandError('WRONGPASS invalid username-password pair or user is disabled.');
  }
}

export const DATA_SPECS: CommandSpec[] = [
  {
    name: 'ping',
    arity: -1,
    flags: ['fast', 'stale'],
    keys: NO_KEYS,
    run: (_ctx, args) => {
      if (args.length > 2) throw arityError('ping');
      return args.length === 2 ? R.bulk(args[1] as Buffer) : R.simple('PONG');
    },
  },
  { name: 'echo', arity: 2, flags: ['fast'], keys: NO_KEYS, run: (_c, args) => R.bulk(args[1] as Buffer) },
  {
    name: 'hello',
    arity: -1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth'],
    keys: NO_KEYS,
    run: (ctx, args) => {
      // HELLO [protover [AUTH username password] [SETNAME clientname]], as Redis 6.
      let proto = ctx.client.proto;
      let name: string | undefined;
      let auth: { user: string; password: string } | undefined;
      if (args.length >= 2) {
        const v = args[1]?.toString('latin1') ?? '';
        if (!/^[0-9]+$/.test(v))
          throw new RespCommandError('ERR Protocol version is not an integer or out of range');
        if (v !== '2' && v !== '3') throw new RespCommandError('NOPROTO unsupported protocol version');
        proto = v === '2' ? 2 : 3;
      }
      for (let i = 2; i < args.length; i++) {
        const opt = upper(args[i]);
        if (opt === 'AUTH' && i + 2 < args.length) {
          if (!ctx.backend.login) throw new RespCommandError(NO_AUTH);
          auth = {
            user: (args[i + 1] as Buffer).toString('utf8'),
            password: (args[i + 2] as Buffer).toString('utf8'),
          };
          i += 2;
        } else if (opt === 'SETNAME' && i + 1 < args.length) {
          const n = args[++i] as Buffer;
          if (!validClientName(n)) {
            throw new RespCommandError(
              'ERR Client names cannot contain spaces, newlines or special characters.',
            );
          }
          name = n.toString('latin1');
        } else {
          throw new RespCommandError(`ERR Syntax error in HELLO option '${args[i]?.toString('latin1')}'`);
        }
      }
      const apply = () => {
        ctx.client.proto = proto;
        if (name !== undefined) ctx.client.name = name;
        return helloReply(ctx);
      };
      // Without AUTH the switch is synchronous (the reply goes out in the new protocol); with AUTH the
      // protocol and name change only once the login succeeded (a failed HELLO changes nothing).
      return auth === undefined ? apply() : loginAs(ctx, auth.user, auth.password).then(apply);
    },
  },
  {
    name: 'auth',
    arity: -2,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth'],
    keys: NO_KEYS,
    run: async (ctx, args) => {
      // AUTH password (the user "default") or AUTH user password, as Redis 6 ACLs.
      if (!ctx.backend.login) throw new RespCommandError(NO_AUTH);
      if (args.length > 3) throw arityError('auth');
      const user = args.length === 3 ? (args[1] as Buffer).toString('utf8') : 'default';
      await loginAs(ctx, user, (args[args.length - 1] as Buffer).toString('utf8'));
      return OK;
    },
  },
  {
    name: 'select',
    arity: 2,
    flags: ['loading', 'stale', 'fast'],
    keys: NO_KEYS,
    run: (_c, args) => {
      const n = int64Arg(args[1]);
      if (n !== 0n) throw new RespCommandError('ERR DB index is out of range');
      return OK;
    },
  },
  {
    name: 'quit',
    arity: -1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth'],
    keys: NO_KEYS,
    run: (ctx) => {
      ctx.client.quitting = true;
      return OK;
    },
  },
  {
    name: 'get',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) => {
      const r = await ctx.run({ op: 'get', key: keyArg(args[1] as Buffer, ctx) });
      if (r.op !== 'get') throw unexpected(r);
      return r.value === null ? NULL : R.bulk(r.value);
    },
  },
  {
    name: 'strlen',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) => {
      const r = await ctx.run({ op: 'get', key: keyArg(args[1] as Buffer, ctx) });
      if (r.op !== 'get') throw unexpected(r);
      if (r.value === null) return R.int(0);
      return R.int(typeof r.value === 'string' ? Buffer.byteLength(r.value) : r.value.length);
    },
  },
  { name: 'set', arity: -3, flags: ['write', 'denyoom'], keys: ONE_KEY, run: setCommand },
  {
    name: 'setnx',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) => R.int((await conditionalSet(ctx, args, 2, 'absent')).applied ? 1 : 0),
  },
  {
    name: 'getset',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) =>
      R.bulkOrNull((await conditionalSet(ctx, args, 2, 'always', { get: true })).previous ?? null),
  },
  {
    name: 'cas',
    arity: 4,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) =>
      R.int(
        (await conditionalSet(ctx, args, 3, 'equal', { expected: valueArg(args[2] as Buffer, ctx) })).applied
          ? 1
          : 0,
      ),
  },
  {
    name: 'getdel',
    arity: 2,
    flags: ['write', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) => {
      const r = await ctx.run({ op: 'getdel', key: keyArg(args[1] as Buffer, ctx) });
      if (r.op !== 'getdel') throw unexpected(r);
      return R.bulkOrNull(r.value);
    },
  },
  ...(['del', 'unlink'] as const).map(
    (name): CommandSpec => ({
      name,
      arity: -2,
      flags: ['write'],
      keys: ALL_KEYS,
      run: async (ctx, args) => {
        const keys = args.slice(1).map((k) => keyArg(k, ctx));
        const results = await all(
          ctx,
          keys.map((key) => ({ op: 'delete', key })),
        );
        return R.int(results.filter((r) => r.op === 'delete' && r.existed).length);
      },
    }),
  ),
  {
    name: 'exists',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: ALL_KEYS,
    run: async (ctx, args) => {
      const keys = args.slice(1).map((k) => keyArg(k, ctx));
      const results = await all(
        ctx,
        keys.map((key) => ({ op: 'get', key })),
      );
      return R.int(results.filter((r) => r.op === 'get' && r.value !== null).length);
    },
  },
  {
    name: 'mget',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: ALL_KEYS,
    run: async (ctx, args) => {
      const keys = args.slice(1).map((k) => keyArg(k, ctx));
      if (onePartition(ctx, keys)) {
        // One partition (one hash tag): one read-only transaction, every value at one revision.
        const r = await ctx.run({
          op: 'txn',
          compare: [],
          success: keys.map((key) => ({ get: { key } })),
          failure: [],
        });
        if (r.op !== 'txn') throw unexpected(r);
        return R.array(r.results.map((x) => (x.op === 'get' ? R.bulkOrNull(x.value) : NULL)));
      }
      const results = await all(
        ctx,
        keys.map((key) => ({ op: 'get', key })),
      );
      return R.array(results.map((r) => (r.op === 'get' ? R.bulkOrNull(r.value) : NULL)));
    },
  },
  {
    name: 'mset',
    arity: -3,
    flags: ['write', 'denyoom'],
    keys: [1, -1, 2],
    run: async (ctx, args) => {
      if (args.length % 2 !== 1) throw arityError('mset');
      const pairs = new Map<string, Uint8Array>(); // a key given twice keeps its last value, as in Redis
      for (let i = 1; i < args.length; i += 2) {
        pairs.set(keyArg(args[i] as Buffer, ctx), valueArg(args[i + 1] as Buffer, ctx));
      }
      if (onePartition(ctx, [...pairs.keys()])) {
        // One partition (one hash tag): one transaction, all keys written atomically at one revision.
        await ctx.run({
          op: 'txn',
          compare: [],
          success: [...pairs].map(([key, value]) => ({ put: { key, value } })),
          failure: [],
        });
        return OK;
      }
      await all(
        ctx,
        [...pairs].map(([key, value]) => ({ op: 'put', key, value })),
      );
      return OK;
    },
  },
  {
    name: 'incr',
    arity: 2,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: (ctx, args) => incrBy(ctx, args[1] as Buffer, 1n),
  },
  {
    name: 'decr',
    arity: 2,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: (ctx, args) => incrBy(ctx, args[1] as Buffer, -1n),
  },
  {
    name: 'incrby',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: (ctx, args) => incrBy(ctx, args[1] as Buffer, int64Arg(args[2])),
  },
  {
    name: 'decrby',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: (ctx, args) => {
      const by = int64Arg(args[2]);
      if (by === INT64_MIN) throw new RespCommandError('ERR decrement would overflow');
      return incrBy(ctx, args[1] as Buffer, -by);
    },
  },
  {
    name: 'append',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) => {
      const r = await ctx.run({
        op: 'append',
        key: keyArg(args[1] as Buffer, ctx),
        value: valueArg(args[2] as Buffer, ctx),
      });
      if (r.op !== 'append') throw unexpected(r);
      if (r.outcome === 'too-large') {
        throw new RespCommandError('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
      }
      return R.int(r.length);
    },
  },
];
