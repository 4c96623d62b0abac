/**
 * The bank-transfer workload shared by the replica-group simulation and the nemesis: the accounts of
 * one hash tag, transfers between two of them as transactions guarded by the `modRevision`s a client
 * read (etcd's optimistic transaction), and the invariant every read must satisfy (no account yet, or
 * all of them summing to the total).
 * @module
 */
import type { KeyValue, KvOp, RangeOp, TxnOp } from '@paxkv/common';

/** Initial balance of every account. */
export const BANK_INITIAL_BALANCE = 100;

/** The accounts of tag `tag`: `{tag}:a0` ... `{tag}:a<n-1>` (one hash tag, so one partition). */
export function bankAccounts(tag: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `{${tag}}:a${i}`);
}

/** One range read of every account of `tag` (a single-tag range: one linearizable read). */
export function bankRead(tag: string): RangeOp {
  return { op: 'range', start: `{${tag}}:`, end: `{${tag}};` };
}

/** The accounts as one read returned them: `absent` before the set-up, else balances and modRevisions. */
export type BankView = 'absent' | { readonly balances: readonly number[]; readonly mods: readonly number[] };

/** What the workload needs of a random source. */
export interface BankRandom {
  /** A uniform integer in [0, n). */
  int(n: number): number;
}

/**
 * The next operation of a client that last saw `view` of `accounts`: read them when it has no view;
 * set them up (every account at {@link BANK_INITIAL_BALANCE}, guarded by "the first account does not
 * exist", so only one set-up applies) when they were absent; otherwise move a random amount (at most
 * the balance) between two random accounts, guarded by the modRevisions it read, reading both back on
 * failure.
 */
export function nextBankOp(view: BankView | undefined, accounts: readonly string[], rng: BankRandom): KvOp {
  const tagEnd = (accounts[0] as string).indexOf('}');
  if (view === undefined) return bankRead((accounts[0] as string).slice(1, tagEnd));
  if (view === 'absent') {
    return {
      op: 'txn',
      compare: [{ key: accounts[0] as string, target: 'exists', op: '=', value: false }],
      success: accounts.map((key) => ({ put: { key, value: String(BANK_INITIAL_BALANCE) } })),
      failure: [],
    } satisfies TxnOp;
  }
  const from = rng.int(accounts.length);
  const to = (from + 1 + rng.int(accounts.length - 1)) % accounts.length;
  const balanceFrom = view.balances[from] as number;
  const balanceTo = view.balances[to] as number;
  const amount = rng.int(balanceFrom + 1);
  const fromKey = accounts[from] as string;
  const toKey = accounts[to] as string;
  return {
    op: 'txn',
    compare: [
      { key: fromKey, target: 'modRevision', op: '=', value: view.mods[from] as number },
      { key: toKey, target: 'modRevision', op: '=', value: view.mods[to] as number },
    ],
    success: [
      { put: { key: fromKey, value: String(balanceFrom - amount) } },
      { put: { key: toKey, value: String(balanceTo + amount) } },
    ],
    failure: [{ get: { key: fromKey } }, { get: { key: toKey } }],
  } satisfies TxnOp;
}

/**
 * Checks one read of every account against the invariant: no account, or exactly `accounts` (in key
 * order) with non-negative integer balances summing to `accounts.length * BANK_INITIAL_BALANCE`.
 * Returns the view, or a line saying what is wrong.
 */
export function checkBankRead(
  accounts: readonly string[],
  kvs: readonly KeyValue[],
): { readonly view: BankView } | { readonly problem: string } {
  if (kvs.length === 0) return { view: 'absent' };
  const total = accounts.length * BANK_INITIAL_BALANCE;
  const balances = kvs.map((kv) => (typeof kv.value === 'string' ? Number(kv.value) : Number.NaN));
  const sum = balances.reduce((a, b) => a + b, 0);
  const keys = kvs.map((kv) => kv.key).join(',');
  if (keys !== accounts.join(',') || sum !== total || balances.some((b) => !Number.isInteger(b) || b < 0)) {
    return {
      problem: `accounts [${keys}] balances [${balances.join(',')}] sum ${sum}, expected all ${accounts.length} accounts summing to ${total}`,
    };
  }
  return { view: { balances, mods: kvs.map((kv) => kv.modRevision) } };
}

/**
 * Acknowledged transfers against the final read: every account's final modRevision must be at least
 * that of the last acknowledged write to it, with that write's balance when equal. Returns one line per
 * lost write.
 * @param acked - per account, the revision and balance of its last acknowledged write.
 */
export function lostBankWrites(
  accounts: readonly string[],
  finalView: BankView,
  acked: ReadonlyMap<string, { readonly revision: number; readonly value: string }>,
): string[] {
  const out: string[] = [];
  for (const [key, w] of acked) {
    const i = accounts.indexOf(key);
    if (i < 0) continue;
    const mod = finalView === 'absent' ? 0 : (finalView.mods[i] as number);
    const balance = finalView === 'absent' ? undefined : finalView.balances[i];
    if (mod < w.revision || (mod === w.revision && balance !== Number(w.value))) {
      out.push(
        `acknowledged write of ${key} = ${w.value} at revision ${w.revision} lost: the final read has ${balance ?? 'no account'} at modRevision ${mod}`,
      );
    }
  }
  return out;
}

/** Records, per account, the last acknowledged write of a transaction that succeeded at `revision`. */
export function noteBankWrites(
  op: TxnOp,
  revision: number,
  acked: Map<string, { revision: number; value: string }>,
): void {
  for (const w of op.success) {
    if (!('put' in w)) continue;
    const last = acked.get(w.put.key);
    if (last === undefined || last.revision < revision) {
      acked.set(w.put.key, { revision, value: String(w.put.value) });
    }
  }
}
