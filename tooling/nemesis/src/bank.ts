/**
 * The bank-transfer workload of the nemesis (`--workload bank`): K clients move money between the
 * accounts of one hash tag with transactions guarded by the `modRevision`s they read (the same
 * operations as the kvstore simulation's bank workload, `@paxkv/kvstore/testing`), every read of the
 * accounts checked against the total, every acknowledged transfer checked against the final read, and
 * the histories checked with the checker's `kv-txn` model.
 * @module
 */
import type { KeyValue, KvOp, RangeOp, TxnOp } from '@paxkv/common';
import {
  type BankView,
  bankAccounts,
  bankRead,
  checkBankRead,
  lostBankWrites,
  nextBankOp,
  noteBankWrites,
} from '@paxkv/kvstore/testing';
import type { LineSink } from './history.js';
import type { Rng } from './rng.js';
import { ClientLoops } from './workload.js';

/** The hash tag of the nemesis' accounts. */
export const BANK_TAG = 'bank';

/** What the bank workload needs from a client (the real one is `@paxkv/client`, see `client-adapter.ts`). */
export interface BankClient {
  /** One linearizable read of the range (single tag). */
  range(op: RangeOp): Promise<{ readonly kvs: readonly KeyValue[]; readonly revision: number }>;
  /** A transaction. */
  txn(op: TxnOp): Promise<{ readonly succeeded: boolean; readonly revision: number }>;
  close(): Promise<void>;
}

/** Builds client number `index`, recording its history into `history`. */
export type BankClientFactory = (index: number, history: LineSink) => Promise<BankClient> | BankClient;

/**
 * K concurrent clients, each a loop of: read every account (one range), then a transfer between two of
 * them guarded by the modRevisions read (the first client to find no account sets them up). Every read
 * is checked against the invariant; {@link problems} lists the reads that broke it.
 */
export class BankWorkload extends ClientLoops<BankClient> {
  /** Reads that broke the invariant. */
  readonly problems: string[] = [];
  /** Transactions acknowledged as succeeded (set-up included). */
  ackedTransfers = 0;
  /** Per account, the revision and balance of its last acknowledged write. */
  readonly acked = new Map<string, { revision: number; value: string }>();
  /** The accounts. */
  readonly accounts: readonly string[];

  constructor(
    accounts: number,
    rng: Rng,
    private readonly maxThinkMs = 5,
  ) {
    super(rng);
    if (accounts < 2) throw new RangeError('the bank workload needs at least two accounts');
    this.accounts = bankAccounts(BANK_TAG, accounts);
  }

  /** Runs `op` on `client`; a read is checked and returns the view it gave. */
  async run(client: BankClient, op: KvOp, who: string): Promise<BankView | undefined> {
    if (op.op === 'range') {
      const r = await client.range(op);
      const checked = checkBankRead(this.accounts, r.kvs);
      if ('problem' in checked) {
        this.problems.push(`${who} read at revision ${r.revision}: ${checked.problem}`);
        return undefined;
      }
      return checked.view;
    }
    if (op.op === 'txn') {
      const r = await client.txn(op);
      if (r.succeeded) {
        this.ackedTransfers += 1;
        noteBankWrites(op, r.revision, this.acked);
      }
    }
    return undefined;
  }

  /** The lost acknowledged writes, given the final read. */
  lost(finalView: BankView): string[] {
    return lostBankWrites(this.accounts, finalView, this.acked);
  }

  protected async loop(client: BankClient, index: number, rng: Rng): Promise<void> {
    let view: BankView | undefined;
    while (!this.stopped) {
      const op = nextBankOp(view, this.accounts, rng);
      view = undefined;
      await this.counted(async () => {
        view = await this.run(client, op, `client ${index}`);
      });
      await this.think(rng, this.maxThinkMs);
    }
  }
}

/** The final read of the accounts after healing (recorded in `history`), retried until the deadline. */
export async function finalBankRead(
  workload: BankWorkload,
  factory: BankClientFactory,
  index: number,
  history: LineSink,
  timeoutMs: number,
): Promise<{ view: BankView | undefined; problem?: string }> {
  const client = await factory(index, history);
  const deadline = Date.now() + timeoutMs;
  const before = workload.problems.length;
  try {
    while (Date.now() < deadline) {
      try {
        const view = await workload.run(client, bankRead(BANK_TAG), 'final read');
        if (view === undefined) return { view, problem: workload.problems[before] ?? 'final read failed' };
        return { view };
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    return { view: undefined, problem: 'no final read succeeded' };
  } finally {
    await client.close().catch(() => {});
  }
}
