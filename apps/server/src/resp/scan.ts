import { prefixEnd } from '@paxkv/common';
import {
  type CommandContext,
  int64Arg,
  RespCommandError,
  type ScanCursor,
  SYNTAX,
  unexpected,
  upper,
} from './command-context.js';
import { R, type RespValue } from './encoder.js';

function firstGlob(pattern: string): number {
  for (let i = 0; i < pattern.length; i++) if ('*?[\\'.includes(pattern[i] as string)) return i;
  return -1;
}

/** A Redis glob pattern (`*`, `?`, `[abc]`, `[^a-z]`, `\x`) as a regular expression. */
export function globToRegExp(pattern: string): RegExp {
  let out = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') out += '[\\s\\S]*';
    else if (c === '?') out += '[\\s\\S]';
    else if (c === '\\' && i + 1 < pattern.length)
      out += `\\${pattern[++i]}`.replace(/^\\([A-Za-z0-9])$/, '$1');
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) out += '\\[';
      else {
        let body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('^')) body = `^${body.slice(1)}`;
        out += `[${body}]`;
        i = end;
      }
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${out}$`, 's');
}

/** Most SCAN cursors one connection keeps open; the oldest is dropped beyond it. */
const MAX_CURSORS = 64;
let nextCursorId = 1;

/** SCAN cursor [MATCH pattern] [COUNT n]: walks every partition's ordered keys with a server-side cursor. */
export async function scan(ctx: CommandContext, args: readonly Buffer[]): Promise<RespValue> {
  const partitions = ctx.backend.facts().partitions;
  if (partitions === null) throw new RespCommandError('NOT_READY the cluster has not started yet');
  let match = '*';
  let count = 10;
  for (let i = 2; i < args.length; i++) {
    const opt = upper(args[i]);
    if (opt === 'MATCH' && i + 1 < args.length) match = (args[++i] as Buffer).toString('utf8');
    else if (opt === 'COUNT' && i + 1 < args.length) {
      const n = int64Arg(args[++i]);
      if (n < 1n) throw new RespCommandError(SYNTAX);
      count = Number(n > 1000n ? 1000n : n);
    } else if (opt === 'TYPE' && i + 1 < args.length) {
      if ((args[++i] as Buffer).toString('latin1').toLowerCase() !== 'string')
        return R.array([R.bulk('0'), R.array([])]);
    } else throw new RespCommandError(SYNTAX);
  }
  const cursorText = (args[1] as Buffer).toString('latin1');
  if (!/^[0-9]{1,19}$/.test(cursorText)) throw new RespCommandError('ERR invalid cursor');
  let state: ScanCursor;
  if (cursorText === '0') state = { partition: 0, after: null, match };
  else {
    const known = ctx.client.cursors.get(Number(cursorText));
    if (!known)
      throw new RespCommandError('ERR invalid cursor (paxkv keeps the last 64 cursors of a connection)');
    ctx.client.cursors.delete(Number(cursorText));
    state = { ...known, match };
  }
  const g = firstGlob(match);
  const prefix = g < 0 ? match : match.slice(0, g);
  const test =
    g < 0
      ? (k: string) => k === match
      : (
          (re) => (k: string) =>
            re.test(k)
        )(globToRegExp(match));
  const end = g < 0 ? `${match}\u0000` : prefixEnd(prefix);
  const r = await ctx.run({
    op: 'range',
    start: state.after === null ? prefix : `${state.after}\u0000`,
    ...(end !== undefined ? { end } : {}),
    limit: count,
    keysOnly: true,
    partition: state.partition,
  });
  if (r.op !== 'range') throw unexpected(r);
  const keys = r.kvs.map((kv) => kv.key);
  const next: ScanCursor | null = r.more
    ? { partition: state.partition, after: keys[keys.length - 1] ?? state.after, match }
    : state.partition + 1 < partitions
      ? { partition: state.partition + 1, after: null, match }
      : null;
  let cursor = '0';
  if (next) {
    const id = nextCursorId++;
    ctx.client.cursors.set(id, next);
    if (ctx.client.cursors.size > MAX_CURSORS)
      ctx.client.cursors.delete(ctx.client.cursors.keys().next().value as number);
    cursor = String(id);
  }
  return R.array([R.bulk(cursor), R.array(keys.filter(test).map((k) => R.bulk(k)))]);
}
