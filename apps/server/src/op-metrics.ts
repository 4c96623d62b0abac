/**
 * The request path's two metrics, `paxkv_ops_total{op,result}` and `paxkv_op_duration_seconds{op}`,
 * recorded without prom-client on the hot path: prom-client's labelled children validate and hash
 * their labels on every `inc`/`observe` (about 1 µs a request on a loaded server). Here a request
 * costs one map lookup by a precomputed key and a few additions into fixed arrays; prom-client reads
 * the figures only when `/metrics` is scraped, through the metric interface its registry asks of
 * every metric (`get()`), so the exposition (names, labels, cumulative `le` buckets, `_sum`,
 * `_count`) is the one prom-client's own Counter and Histogram would write.
 * @module
 */
import type { Registry } from 'prom-client';

/** Most (op, result) pairs and ops tracked; past it, further ones are counted under op `other`. */
export const MAX_OP_SERIES = 256;

/** One value line of a metric, as prom-client's registry formats it. */
interface MetricLine {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

/** What prom-client's registry asks of a metric (`Registry.registerMetric`). */
interface RegistryMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<{
    name: string;
    help: string;
    type: 'counter' | 'histogram';
    aggregator: 'sum';
    values: MetricLine[];
  }>;
  reset(): void;
}

/** The latency series of one op: counts per bucket (not cumulative), sum and count. */
interface LatencySeries {
  readonly op: string;
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

/** The counter of one (op, result) pair plus its op's latency series. */
interface OpSeries {
  readonly op: string;
  readonly result: string;
  count: number;
  readonly latency: LatencySeries;
}

/** Options of {@link OpMetrics}. */
export interface OpMetricsOptions {
  /** Registry both metrics are registered in. */
  readonly registry: Registry;
  /** Upper bounds of the latency buckets in seconds, ascending (`+Inf` is implied). */
  readonly buckets: readonly number[];
}

/** See the module comment. */
export class OpMetrics {
  private readonly bounds: Float64Array;
  private readonly pairs = new Map<string, OpSeries>();
  private readonly latency = new Map<string, LatencySeries>();

  /** @throws RangeError when the buckets are empty or not strictly ascending. */
  constructor(options: OpMetricsOptions) {
    const b = options.buckets;
    if (b.length === 0 || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!)))
      throw new RangeError('latency buckets must be finite and strictly ascending');
    this.bounds = Float64Array.from(b);
    options.registry.registerMetric(this.counterMetric() as never);
    options.registry.registerMetric(this.histogramMetric() as never);
  }

  /** Records one finished operation: its result (`ok` or an error code) and its latency in seconds. */
  observe(op: string, result: string, seconds: number): void {
    const key = result === 'ok' ? op : `${op}\u0000${result}`;
    let s = this.pairs.get(key);
    if (s === undefined) s = this.add(key, op, result);
    s.count++;
    const l = s.latency;
    if (!(seconds >= 0)) return; // NaN or negative: counted, not timed
    l.sum += seconds;
    l.count++;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    if (i < bounds.length) l.buckets[i]!++;
  }

  private add(key: string, op: string, result: string): OpSeries {
    if (this.pairs.size >= MAX_OP_SERIES) {
      op = 'other';
      result = 'other';
      key = 'other\u0000other';
      const known = this.pairs.get(key);
      if (known !== undefined) return known;
    }
    let latency = this.latency.get(op);
    if (latency === undefined) {
      latency = { op, buckets: new Float64Array(this.bounds.length), sum: 0, count: 0 };
      this.latency.set(op, latency);
    }
    const s: OpSeries = { op, result, count: 0, latency };
    this.pairs.set(key, s);
    return s;
  }

  /** `paxkv_ops_total{op,result}`. */
  private counterMetric(): RegistryMetric {
    const name = 'paxkv_ops_total';
    const help =
      'Client operations by type (get, put, cas, delete, lookup, status) and result (ok or error code)';
    return {
      name,
      help,
      type: 'counter',
      aggregator: 'sum',
      get: async () => ({
        name,
        help,
        type: 'counter',
        aggregator: 'sum',
        values: [...this.pairs.values()].map((s) => ({
          metricName: name,
          labels: { op: s.op, result: s.result },
          value: s.count,
        })),
      }),
      reset: () => {
        for (const s of this.pairs.values()) s.count = 0;
      },
    };
  }

  /** `paxkv_op_duration_seconds{op}`. */
  private histogramMetric(): RegistryMetric {
    const name = 'paxkv_op_duration_seconds';
    const help = 'Latency of client operations at this server, in seconds';
    return {
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => {
        const values: MetricLine[] = [];
        for (const l of this.latency.values()) {
          let acc = 0;
          for (let i = 0; i < this.bounds.length; i++) {
            acc += l.buckets[i]!;
            values.push({
              metricName: `${name}_bucket`,
              labels: { le: this.bounds[i]!, op: l.op },
              value: acc,
            });
          }
          values.push(
            { metricName: `${name}_bucket`, labels: { le: '+Inf', op: l.op }, value: l.count },
            { metricName: `${name}_sum`, labels: { op: l.op }, value: l.sum },
            { metricName: `${name}_count`, labels: { op: l.op }, value: l.count },
          );
        }
        return { name, help, type: 'histogram', aggregator: 'sum', values };
      },
      reset: () => {
        for (const l of this.latency.values()) {
          l.buckets.fill(0);
          l.sum = 0;
          l.count = 0;
        }
      },
    };
  }
}
