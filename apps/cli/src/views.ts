/**
 * Output formats of the informational commands (`-w table|json|simple`, as etcdctl's `-w`): aligned
 * columns with a header for people, one JSON document for programs, or plain `, `-separated lines for
 * `grep`/`cut`.
 */
import type { StatusReply } from './status-view.js';

/** The `-w` formats. */
export const OUTPUT_FORMATS = ['table', 'json', 'simple'] as const;
/** An output format. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Rows under a header, columns aligned. */
export function renderTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** One line per row, cells joined by `, `. */
export function renderSimple(rows: ReadonlyArray<readonly string[]>): string {
  return rows.map((r) => r.join(', ')).join('\n');
}

/** The health of one endpoint, as measured by `endpoint health`. */
export interface EndpointHealth {
  readonly endpoint: string;
  readonly health: boolean;
  readonly tookMs: number;
  readonly error?: string;
}

/** Renders `endpoint health`. */
export function formatHealth(rows: readonly EndpointHealth[], format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(rows);
  if (format === 'simple') {
    return rows
      .map((r) =>
        r.health
          ? `${r.endpoint} is healthy: took ${r.tookMs.toFixed(1)} ms`
          : `${r.endpoint} is unhealthy: ${r.error ?? 'no answer'}`,
      )
      .join('\n');
  }
  return renderTable(
    ['ENDPOINT', 'HEALTH', 'TOOK', 'ERROR'],
    rows.map((r) => [r.endpoint, String(r.health), `${r.tookMs.toFixed(1)} ms`, r.error ?? '']),
  );
}

/** What `endpoint status` shows of one server. */
export interface EndpointStatus {
  readonly endpoint: string;
  readonly node: number | null;
  readonly tableVersion: number | null;
  readonly groups: number;
  readonly leading: number;
  readonly decided: number;
  readonly error?: string;
}

/** The per-server summary of a status reply. */
export function endpointStatus(reply: StatusReply): EndpointStatus {
  if (!('status' in reply)) {
    return {
      endpoint: reply.address,
      node: null,
      tableVersion: null,
      groups: 0,
      leading: 0,
      decided: 0,
      error: reply.error,
    };
  }
  const s = reply.status;
  return {
    endpoint: reply.address,
    node: s.node,
    tableVersion: s.table?.version ?? null,
    groups: s.groups.length,
    leading: s.groups.filter((g) => g.role === 'leader').length,
    decided: s.groups.reduce((a, g) => a + g.decidedIndex, 0),
  };
}

/** Renders `endpoint status`. */
export function formatEndpointStatus(rows: readonly EndpointStatus[], format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(rows);
  const cells = rows.map((r) => [
    r.endpoint,
    r.node === null ? '?' : String(r.node),
    r.tableVersion === null ? '-' : String(r.tableVersion),
    String(r.groups),
    String(r.leading),
    String(r.decided),
    r.error ?? '',
  ]);
  if (format === 'simple') return renderSimple(cells.map((c) => (c[6] === '' ? c.slice(0, 6) : c)));
  return renderTable(['ENDPOINT', 'NODE', 'TABLE', 'GROUPS', 'LEADING', 'DECIDED', 'ERROR'], cells);
}
