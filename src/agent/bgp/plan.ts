/**
 * From the agent's view (desired documents, what it applied, what the kernel holds) to the input of
 * edgeBirdSpec (announce.ts): which prefixes this node may announce now. Pure.
 *
 * An account's advertised prefix is announced only when:
 *   - the account is ready here: its last reconcile succeeded (status ok) — a failing account is withdrawn alone;
 *   - the prefix was advertised in the revision that was applied (a prefix added, or switched to advertised, is
 *     announced once the pass that sets it up has succeeded) AND it is still advertised in the current document
 *     (withdrawal is immediate: it never waits for a reconcile);
 *   - the kernel serves it: table <node.table> routes it to the account's veth (checked by the caller, given as
 *     `servable`; a prefix without its route is refused with the reason).
 * Node-wide: nothing while drained or while the host/data plane is not ready (announce.ts).
 */
import type { AccountStatus } from '../../model/node-status.js';
import type { AccountDocument } from '../../model/schemas.js';
import type { EdgeAccountInput } from './announce.js';

/** What was advertised in the revision last applied without error, per account (survives between passes). */
export type AppliedAdvertised = Map<string, { revision: number; advertised: ReadonlySet<string> }>;

export interface AccountsForBgp {
  /** Current documents with their store revision. */
  docs: ReadonlyMap<string, { doc: AccountDocument; revision: number }>;
  /** The agent's per-account status. */
  states: Readonly<Record<string, AccountStatus>>;
  /** Prefixes (canonical text) that table <node.table> routes to their account's veth, per account id. */
  servable?: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface AccountsBgpPlan {
  accounts: EdgeAccountInput[];
  /** Advertised prefixes withdrawn from this node because their account is not ready here. */
  notReady: Record<string, string[]>;
  /** Advertised prefixes held back for a reason of their own. */
  held: { accountId: string; value: string; reason: string }[];
}

/**
 * Updates `applied` from the current states (an account whose status says it applied the current revision records
 * that revision's advertised prefixes; deleted accounts are forgotten) and returns the announcement input.
 */
export function accountsForBgp(view: AccountsForBgp, applied: AppliedAdvertised): AccountsBgpPlan {
  for (const id of [...applied.keys()]) if (!view.docs.has(id)) applied.delete(id);
  const accounts: EdgeAccountInput[] = [];
  const notReady: Record<string, string[]> = {};
  const held: AccountsBgpPlan['held'] = [];
  for (const [id, { doc, revision }] of view.docs) {
    const st = view.states[id];
    const advertisedNow = doc.prefixes.filter((p) => p.advertised).map((p) => p.cidr);
    const ready = st?.state === 'ok';
    if (ready && st.applied_revision === revision) applied.set(id, { revision, advertised: new Set(advertisedNow) });
    const before = applied.get(id);
    const servable = view.servable?.get(id);
    const prefixes = doc.prefixes.map((p) => {
      let advertised = p.advertised && ready;
      if (advertised && !before?.advertised.has(p.cidr)) {
        held.push({ accountId: id, value: p.cidr, reason: 'waiting for the reconcile that sets it up on this node' });
        advertised = false;
      }
      if (advertised && servable && !servable.has(p.cidr)) {
        held.push({ accountId: id, value: p.cidr, reason: "no route to the account's namespace in the host's customer table" });
        advertised = false;
      }
      return { cidr: p.cidr, advertised };
    });
    if (!ready && advertisedNow.length) notReady[id] = advertisedNow;
    accounts.push({ id, ready, prefixes });
  }
  return { accounts, notReady, held };
}
