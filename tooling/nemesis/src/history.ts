/**
 * Collecting, merging and reading the workload's JSON-lines histories (format v1 of
 * `@paxkv/linearizability-checker`: one `invoke` and at most one `ok`/`fail`/`info` per operation).
 * @module
 */

/** A history line sink, as the client's `history` option takes it. */
export interface LineSink {
  write(line: string): void;
}

/** Collects one client's history lines in memory. */
export class MemoryHistory implements LineSink {
  /** The lines written so far (without trailing newlines). */
  readonly lines: string[] = [];

  /** Adds a line (a trailing newline, if any, is removed; several lines at once are split). */
  write(line: string): void {
    for (const l of line.split('\n')) if (l.trim() !== '') this.lines.push(l);
  }
}

/** The operation of an `invoke` event of the kv model. */
export interface KvOpSpec {
  readonly f: 'get' | 'put' | 'cas' | 'delete' | string;
  readonly key: string;
  readonly value?: string | null;
  readonly expected?: string | null;
}

/** One event line of a history, as the nemesis reads it. */
export interface HistoryEventView {
  readonly type: 'invoke' | 'ok' | 'fail' | 'info';
  readonly process: number;
  readonly id: number;
  readonly time: number;
  readonly op?: KvOpSpec;
  readonly result?: Record<string, unknown>;
  readonly error?: string;
}

/** One operation: its invoke and completion paired. */
export interface PairedOperation {
  readonly process: number;
  readonly id: number;
  readonly op: KvOpSpec;
  readonly invokeTime: number;
  /** `undefined` when the operation never completed (indeterminate). */
  readonly returnTime: number | undefined;
  readonly status: 'ok' | 'fail' | 'info';
  readonly result: Record<string, unknown> | undefined;
}

/**
 * Merges the histories of several clients into one: every client's processes and ids are renumbered so
 * they stay unique in the union. Lines that are not events (headers, garbage) are skipped and counted.
 * @param sources - one array of lines per client, in client order.
 */
export function mergeHistories(sources: ReadonlyArray<readonly string[]>): {
  events: HistoryEventView[];
  skipped: number;
  /** The source (client index) of every renumbered operation id. */
  clientOfId: Map<number, number>;
} {
  const events: HistoryEventView[] = [];
  const clientOfId = new Map<number, number>();
  const processMap = new Map<string, number>();
  const idMap = new Map<string, number>();
  let skipped = 0;
  sources.forEach((lines, client) => {
    for (const line of lines) {
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch {
        skipped += 1;
        continue;
      }
      if (typeof raw !== 'object' || raw === null) {
        skipped += 1;
        continue;
      }
      const e = raw as Record<string, unknown>;
      const type = e.type;
      if (type !== 'invoke' && type !== 'ok' && type !== 'fail' && type !== 'info') {
        if (!('paxkvHistory' in e)) skipped += 1;
        continue;
      }
      if (typeof e.time !== 'number' || (typeof e.id !== 'number' && typeof e.id !== 'string')) {
        skipped += 1;
        continue;
      }
      const pKey = `${client}/${String(e.process)}`;
      let process = processMap.get(pKey);
      if (process === undefined) {
        process = processMap.size;
        processMap.set(pKey, process);
      }
      const iKey = `${client}/${String(e.id)}`;
      let id = idMap.get(iKey);
      if (id === undefined) {
        id = idMap.size;
        idMap.set(iKey, id);
        clientOfId.set(id, client);
      }
      const out: Record<string, unknown> = { type, process, id, time: e.time };
      if (e.op !== undefined) out.op = e.op;
      if (e.result !== undefined) out.result = e.result;
      if (e.error !== undefined) out.error = e.error;
      events.push(out as unknown as HistoryEventView);
    }
  });
  return { events, skipped, clientOfId };
}

/** Renders events as a JSON-lines history with the v1 header for the kv model. */
export function toJsonl(events: readonly HistoryEventView[]): string {
  const lines = [JSON.stringify({ paxkvHistory: 1, model: 'kv' })];
  for (const e of events) lines.push(JSON.stringify(e));
  return `${lines.join('\n')}\n`;
}

/** Pairs invokes with their completions. An invoke without completion is indeterminate (`info`). */
export function pairOperations(events: readonly HistoryEventView[]): PairedOperation[] {
  const completions = new Map<number, HistoryEventView>();
  for (const e of events) if (e.type !== 'invoke') completions.set(e.id, e);
  const out: PairedOperation[] = [];
  for (const e of events) {
    if (e.type !== 'invoke' || e.op === undefined) continue;
    const c = completions.get(e.id);
    out.push({
      process: e.process,
      id: e.id,
      op: e.op,
      invokeTime: e.time,
      returnTime: c === undefined || c.type === 'info' ? undefined : c.time,
      status: c === undefined ? 'info' : c.type === 'invoke' ? 'info' : c.type,
      result: c?.result,
    });
  }
  return out;
}

/** Operation counts by outcome. */
export interface OutcomeCounts {
  ok: number;
  fail: number;
  info: number;
}

/** Counts operations by outcome (invokes without completion count as indeterminate). */
export function countOutcomes(ops: readonly PairedOperation[]): OutcomeCounts {
  const c: OutcomeCounts = { ok: 0, fail: 0, info: 0 };
  for (const o of ops) c[o.status] += 1;
  return c;
}
