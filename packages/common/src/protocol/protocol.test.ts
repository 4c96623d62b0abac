import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  BackpressureError,
  BadRequestError,
  ConfigError,
  ConfigurationChangedError,
  DecodeError,
  ERROR_CODES,
  errorFromWire,
  errorToWire,
  KeyTooLargeError,
  NotLeaderError,
  PaxkvError,
  UnknownTypeError,
  ValueTooLargeError,
} from '../errors.js';
import {
  type ClientRequest,
  defineMessageSet,
  errorMessage,
  type KvOp,
  type LookupTable,
  LookupTableSchema,
  PeerMessageSchemas,
  parseBootstrapReply,
  parseBootstrapRequest,
  parseClientRequest,
  parsePeerMessage,
  parseServerResponse,
} from './index.js';

const ABSENT = { createRevision: 0, modRevision: 0, version: 0 };
const META = { createRevision: 3, modRevision: 5, version: 2 };
const HEADER = { revision: 9, partition: 1 };

const table: LookupTable = {
  version: 3,
  partitions: 2,
  replication: 3,
  nodes: [
    { id: 1, address: '127.0.0.1:7001' },
    { id: 2, address: '127.0.0.1:7002' },
    { id: 3, address: '[::1]:7003' },
  ],
  groups: [
    { partition: 0, replicas: [1, 2, 3] },
    { partition: 1, replicas: [3, 1, 2] },
  ],
};

describe('client requests', () => {
  const valid: ClientRequest[] = [
    { type: 'kv', id: 1, op: { op: 'get', key: 'a' } },
    { type: 'kv', id: 2, op: { op: 'put', key: 'a', value: 'v' }, session: { client: 'c1', seq: 1 } },
    { type: 'kv', id: 3, op: { op: 'put', key: 'a', value: new Uint8Array([1, 2]) } },
    {
      type: 'kv',
      id: 4,
      op: { op: 'cas', key: 'a', expected: null, value: 'x' },
      consistency: 'linearizable',
    },
    { type: 'kv', id: 5, op: { op: 'cas', key: 'a', expected: 'x', value: 'y' } },
    { type: 'kv', id: 5, op: { op: 'cas', key: 'a', expectedModRevision: 0, value: 'y' } },
    { type: 'kv', id: 5, op: { op: 'cas', key: 'a', expectedVersion: 3, value: 'y' } },
    { type: 'kv', id: 6, op: { op: 'delete', key: 'a' }, consistency: 'stale' },
    { type: 'lookup', id: 0 },
    { type: 'status', id: 9 },
  ];
  it.each(valid)('accepts %j', (msg) => {
    const r = parseClientRequest(msg);
    expect(r).toEqual({ ok: true, value: msg });
  });

  it.each([
    [null, undefined],
    [42, undefined],
    [[1, 2], undefined],
    [{ id: 1 }, 'type'],
    [{ type: 7, id: 1 }, 'type'],
    [{ type: 'kv', id: -1, op: { op: 'get', key: 'a' } }, 'id'],
    [{ type: 'kv', id: 1.5, op: { op: 'get', key: 'a' } }, 'id'],
    [{ type: 'kv', id: 1, op: { op: 'get', key: '' } }, 'op.key'],
    [{ type: 'kv', id: 1, op: { op: 'get', key: 5 } }, 'op.key'],
    [{ type: 'kv', id: 1, op: { op: 'put', key: 'a' } }, 'op.value'],
    [{ type: 'kv', id: 1, op: { op: 'put', key: 'a', value: 3 } }, 'op.value'],
    [{ type: 'kv', id: 1, op: { op: 'frob', key: 'a' } }, 'op.op'],
    [{ type: 'kv', id: 1, op: { op: 'cas', key: 'a', value: 'v' } }, 'op.expected'],
    [
      { type: 'kv', id: 1, op: { op: 'cas', key: 'a', value: 'v', expected: null, expectedVersion: 1 } },
      'op.expected',
    ],
    [
      { type: 'kv', id: 1, op: { op: 'cas', key: 'a', value: 'v', expectedModRevision: -1 } },
      'op.expectedModRevision',
    ],
    [{ type: 'kv', id: 1, op: { op: 'get', key: 'a' }, session: { client: '', seq: 1 } }, 'session.client'],
    [
      { type: 'kv', id: 1, op: { op: 'get', key: 'a' }, session: { client: 'x'.repeat(65), seq: 1 } },
      'session.client',
    ],
    [{ type: 'kv', id: 1, op: { op: 'get', key: 'a' }, session: { client: 'c', seq: 0 } }, 'session.seq'],
    [{ type: 'kv', id: 1, op: { op: 'get', key: 'a' }, consistency: 'eventual' }, 'consistency'],
  ])('rejects %j naming field %s', (msg, field) => {
    const r = parseClientRequest(msg);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toBeInstanceOf(BadRequestError);
    expect((r.error as BadRequestError).field).toBe(field);
    expect(r.error.code).toBe('BAD_REQUEST');
  });

  it('returns the request id with the error so that the reply can be matched', () => {
    const r = parseClientRequest({ type: 'kv', id: 77, op: { op: 'get' } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.id).toBe(77);
  });

  it('rejects unknown types with UNKNOWN_TYPE', () => {
    const r = parseClientRequest({ type: 'checkin', address: '127.0.0.1:1' });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(UnknownTypeError);
      expect(r.error.code).toBe('UNKNOWN_TYPE');
    }
  });

  it('enforces key and value size limits (defaults 4 KiB / 1 MiB), counted in UTF-8 bytes', () => {
    const keyOk = 'k'.repeat(4096);
    expect(parseClientRequest({ type: 'kv', id: 1, op: { op: 'get', key: keyOk } }).ok).toBe(true);
    const r1 = parseClientRequest({ type: 'kv', id: 1, op: { op: 'get', key: 'é'.repeat(2049) } });
    expect(!r1.ok && r1.error).toBeInstanceOf(KeyTooLargeError);
    const big = new Uint8Array(1024 * 1024 + 1);
    const r2 = parseClientRequest({ type: 'kv', id: 1, op: { op: 'put', key: 'a', value: big } });
    expect(!r2.ok && r2.error).toBeInstanceOf(ValueTooLargeError);
    const r3 = parseClientRequest({
      type: 'kv',
      id: 1,
      op: { op: 'cas', key: 'a', expected: big, value: 'x' },
    });
    expect(!r3.ok && r3.error.code).toBe('VALUE_TOO_LARGE');
    const r4 = parseClientRequest(
      { type: 'kv', id: 1, op: { op: 'put', key: 'abc', value: 'xyz' } },
      { maxKeyBytes: 2, maxValueBytes: 10 },
    );
    expect(!r4.ok && r4.error.code).toBe('KEY_TOO_LARGE');
  });

  it('strips unknown fields (tolerant reader) and never throws on hostile input', () => {
    const r = parseClientRequest({ type: 'lookup', id: 1, extra: { deep: true } });
    expect(r).toEqual({ ok: true, value: { type: 'lookup', id: 1 } });
    const hostile = Object.create(null) as Record<string, unknown>;
    hostile.type = 'kv';
    expect(() => parseClientRequest(hostile)).not.toThrow();
    expect(() => parseClientRequest(new Uint8Array(3))).not.toThrow();
  });
});

describe('server responses', () => {
  it('accepts every reply type', () => {
    for (const m of [
      { type: 'kv.ok', id: 1, result: { op: 'get', value: null, ...ABSENT, ...HEADER } },
      { type: 'kv.ok', id: 1, result: { op: 'get', value: 'v', ...META, ...HEADER }, stale: true },
      { type: 'kv.ok', id: 1, result: { op: 'put', created: true, ...META, ...HEADER } },
      {
        type: 'kv.ok',
        id: 1,
        result: { op: 'put', created: true, ...META, ...HEADER },
        leader: { node: 2, address: '127.0.0.1:7002' },
      },
      {
        type: 'kv.ok',
        id: 1,
        result: { op: 'cas', outcome: 'mismatch', current: 'z', ...META, ...HEADER },
      },
      { type: 'kv.ok', id: 1, result: { op: 'delete', existed: false, ...HEADER } },
      { type: 'lookup.ok', id: 1, table },
      {
        type: 'status.ok',
        id: 1,
        status: {
          node: 1,
          table: null,
          groups: [{ partition: 0, leader: null, role: 'follower', decidedIndex: 0 }],
          members: [{ id: 1, address: 'localhost:7001', state: 'alive' }],
        },
      },
      { type: 'error', id: null, code: 'INTERNAL', message: 'x' },
      {
        type: 'error',
        id: 3,
        code: 'NOT_LEADER',
        message: 'x',
        leaderHint: { node: 2, address: '127.0.0.1:7002' },
      },
    ]) {
      expect(parseServerResponse(m)).toEqual({ ok: true, value: m });
    }
  });

  it('refuses a forwarded success whose leader is not a node id and an address', () => {
    const put = { op: 'put', created: true, ...META, ...HEADER };
    for (const leader of [
      { node: -1, address: '127.0.0.1:7002' },
      { node: 2 },
      { node: 2, address: 'x'.repeat(10_000) },
      { node: 2, address: 7002 },
      'node 2',
    ]) {
      expect(
        parseServerResponse({ type: 'kv.ok', id: 1, result: put, leader }).ok,
        JSON.stringify(leader),
      ).toBe(false);
    }
  });

  it('rejects an unknown error code', () => {
    const r = parseServerResponse({ type: 'error', id: 1, code: 'OOPS', message: 'x' });
    expect(!r.ok && (r.error as BadRequestError).field).toBe('code');
  });
});

describe('lookup table', () => {
  it('accepts a consistent table', () => {
    expect(LookupTableSchema.safeParse(table).success).toBe(true);
  });
  it.each([
    [{ ...table, nodes: [...table.nodes, { id: 1, address: 'h:1' }] }, 'nodes.3.id'],
    [{ ...table, groups: [{ partition: 2, replicas: [1] }] }, 'groups.0.partition'],
    [{ ...table, groups: [table.groups[0], table.groups[0]] }, 'groups.1.partition'],
    [{ ...table, groups: [{ partition: 0, replicas: [1, 9] }] }, 'groups.0.replicas.1'],
    [{ ...table, groups: [{ partition: 0, replicas: [1, 1] }] }, 'groups.0.replicas.1'],
    [{ ...table, groups: [{ partition: 0, replicas: [] }] }, 'groups.0.replicas'],
    [{ ...table, nodes: [{ id: 1, address: 'nope' }] }, 'nodes.0.address'],
  ])('rejects an inconsistent table (%#) at %s', (t, path) => {
    const r = parseServerResponse({ type: 'lookup.ok', id: 1, table: t });
    expect(r.ok).toBe(false);
    if (!r.ok) expect((r.error as BadRequestError).field).toBe(`table.${path}`);
  });
});

describe('bootstrap and peer channels', () => {
  it('parses bootstrap requests and replies', () => {
    expect(parseBootstrapRequest({ type: 'checkin', address: '10.0.0.1:7001' }).ok).toBe(true);
    expect(parseBootstrapRequest({ type: 'checkin', address: '10.0.0.1:7001', nodeId: 4 }).ok).toBe(true);
    expect(parseBootstrapRequest({ type: 'checkin', address: '10.0.0.1' }).ok).toBe(false);
    expect(parseBootstrapRequest({ type: 'heartbeat', nodeId: 4 }).ok).toBe(true);
    expect(parseBootstrapRequest({ type: 'heartbeat', nodeId: 0 }).ok).toBe(false);
    expect(parseBootstrapReply({ type: 'checkin.ok', nodeId: 4, table: null }).ok).toBe(true);
    expect(parseBootstrapReply({ type: 'table.push', table }).ok).toBe(true);
    expect(
      parseBootstrapReply({ type: 'members', members: [{ id: 1, address: 'a:1', state: 'spare' }] }).ok,
    ).toBe(true);
    expect(
      parseBootstrapReply({ type: 'members', members: [{ id: 1, address: 'a:1', state: 'dead' }] }).ok,
    ).toBe(false);
  });

  it('parses peer messages and leaves the paxos payload opaque', () => {
    const msg = { type: 'paxos', partition: 0, from: 2, msg: { kind: 'Prepare', n: [1, 2] } };
    expect(parsePeerMessage(msg)).toEqual({ ok: true, value: msg });
    expect(parsePeerMessage({ type: 'peer.hello', from: 3 }).ok).toBe(true);
    expect(parsePeerMessage({ type: 'kv', id: 1, op: { op: 'get', key: 'x'.repeat(5000) } }).ok).toBe(false);
    expect(parsePeerMessage({ type: 'lookup', id: 1 }).ok).toBe(false);
  });

  it('can be extended with new messages', () => {
    const Bye = z.object({ type: z.literal('peer.bye'), from: z.number() });
    const Extended = defineMessageSet('peer message', { ...PeerMessageSchemas, 'peer.bye': Bye });
    const r = Extended.parse({ type: 'peer.bye', from: 1 });
    expect(r.ok).toBe(true);
    if (r.ok && r.value.type === 'peer.bye') expectTypeOf(r.value.from).toEqualTypeOf<number>();
    expect(Extended.is({ type: 'peer.hello', from: 1 })).toBe(true);
  });
});

describe('errors on the wire', () => {
  it('round-trips NOT_LEADER with its hint', () => {
    const e = new NotLeaderError({ leaderHint: { node: 2, address: '127.0.0.1:7002' }, partition: 1 });
    expect(e.message).toContain('retry against node 2 at 127.0.0.1:7002');
    const wire = errorMessage(e, 5);
    expect(parseServerResponse(wire).ok).toBe(true);
    const back = errorFromWire(wire);
    expect(back).toBeInstanceOf(NotLeaderError);
    expect((back as NotLeaderError).leaderHint).toEqual({ node: 2, address: '127.0.0.1:7002' });
    expect(back.message).toBe(e.message);
  });
  it.each(ERROR_CODES)('rebuilds %s as the class with that code, keeping the message', (code) => {
    const e = errorFromWire({ code, message: `msg for ${code}` });
    expect(e).toBeInstanceOf(PaxkvError);
    expect(e.code).toBe(code);
    expect(e.message).toBe(`msg for ${code}`);
    expect(errorToWire(e, 1)).toEqual({ id: 1, code, message: `msg for ${code}` });
  });

  it("round-trips CONFIGURATION_CHANGED with the refusing leader's configuration", () => {
    const e = new ConfigurationChangedError({
      partition: 4,
      expected: { configId: 0, members: [1, 2, 3] },
      current: { configId: 2, members: [1, 3, 2] },
    });
    const wire = errorMessage(e, 7);
    expect(wire.configuration).toEqual({ configId: 2, members: [1, 3, 2] });
    for (const parse of [parsePeerMessage, parseServerResponse]) {
      const r = parse(wire);
      expect(r).toEqual({ ok: true, value: wire });
      const back = errorFromWire(r.ok && r.value.type === 'error' ? r.value : wire);
      expect(back).toBeInstanceOf(ConfigurationChangedError);
      expect((back as ConfigurationChangedError).current).toEqual({ configId: 2, members: [1, 3, 2] });
      expect((back as ConfigurationChangedError).expected.configId).toBe(-1);
      expect(back.message).toBe(e.message);
      // Relayed again (a server forwarding the answer): the configuration stays on the wire.
      expect(errorMessage(back, 7)).toEqual(wire);
    }
  });

  it('decodes CONFIGURATION_CHANGED from an older sender (no configuration): current unknown', () => {
    const old = { type: 'error', id: 1, code: 'CONFIGURATION_CHANGED', message: 'partition 0 runs ...' };
    const r = parsePeerMessage(old);
    expect(r).toEqual({ ok: true, value: old });
    const back = errorFromWire(old as Parameters<typeof errorFromWire>[0]);
    expect((back as ConfigurationChangedError).current).toEqual({ configId: -1, members: [] });
    // A leader that runs no configuration reports none.
    expect(errorMessage(new ConfigurationChangedError({ partition: 0 }), 1).configuration).toBeUndefined();
  });

  it.each([
    ['a negative id', { configId: -1, members: [1] }],
    ['a fractional id', { configId: 1.5, members: [1] }],
    ['an id past 2^53', { configId: 2 ** 53, members: [1] }],
    ['an id as a string', { configId: '2', members: [1] }],
    ['no members', { configId: 2, members: [] }],
    ['node id 0', { configId: 2, members: [0, 1] }],
    ['a negative node id', { configId: 2, members: [-3] }],
    ['a fractional node id', { configId: 2, members: [1.5] }],
    ['a node id past 2^53', { configId: 2, members: [2 ** 53] }],
    ['a node listed twice', { configId: 2, members: [1, 2, 1] }],
    ['64 members', { configId: 2, members: Array.from({ length: 64 }, (_, i) => i + 1) }],
    ['members that are not a list', { configId: 2, members: { 0: 1 } }],
    ['null', null],
  ])('refuses a CONFIGURATION_CHANGED whose configuration has %s', (_what, configuration) => {
    const m = { type: 'error', id: 1, code: 'CONFIGURATION_CHANGED', message: 'x', configuration };
    expect(parsePeerMessage(m).ok).toBe(false);
    expect(parseServerResponse(m).ok).toBe(false);
  });

  it('accepts the largest configuration the wire bounds allow (63 members, id 2^53 - 1)', () => {
    const configuration = {
      configId: Number.MAX_SAFE_INTEGER,
      members: Array.from({ length: 63 }, (_, i) => Number.MAX_SAFE_INTEGER - i),
    };
    const m = { type: 'error', id: 1, code: 'CONFIGURATION_CHANGED', message: 'x', configuration };
    expect(parsePeerMessage(m)).toEqual({ ok: true, value: m });
  });

  it('maps process-local errors to the closest wire code', () => {
    expect(errorToWire(new DecodeError({ reason: 'x' })).code).toBe('BAD_REQUEST');
    expect(errorToWire(new BackpressureError({ bufferedBytes: 1, highWaterMark: 1 })).code).toBe(
      'UNAVAILABLE',
    );
    expect(errorToWire(new ConfigError({ issues: [] })).code).toBe('INTERNAL');
  });

  it('hides the text of non-paxkv errors', () => {
    const wire = errorMessage(new Error('secret path /etc/x'), null);
    expect(wire.code).toBe('INTERNAL');
    expect(wire.message).not.toContain('secret');
  });
  it('types KvOp as a discriminated union', () => {
    const expectedOf = (op: KvOp) => (op.op === 'cas' ? op.expected : undefined);
    expectTypeOf(expectedOf).returns.toEqualTypeOf<string | Uint8Array | null | undefined>();
    expect(expectedOf({ op: 'cas', key: 'k', expected: null, value: 'v' })).toBeNull();
  });
});

describe('watch requests are bounded like keys', () => {
  it('refuses a watch whose key or prefix is larger than the key limit', () => {
    const big = 'k'.repeat(4097);
    for (const filter of [{ key: big }, { prefix: big }]) {
      const r = parseClientRequest({ type: 'watch', id: 1, partition: 0, ...filter });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('KEY_TOO_LARGE');
    }
    expect(parseClientRequest({ type: 'watch', id: 1, partition: 0, prefix: '' }).ok).toBe(true);
  });
});
