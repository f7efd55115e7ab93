/**
 * The API's reads and writes of data-plane objects: mitigation rules (keys.mitigation(id), one key each) and the
 * counters agents publish (keys.nodeCounters(node)). A new rule is one compare-and-swap over every stored rule, so
 * two operators adding rules at once can never exceed what the data plane holds for a prefix together.
 */
import { sumCounterItems, sumRuleCounters, decodeNodeCounters, type CounterItem, type RuleCounters } from '../model/counters.js';
import { ConflictError, NotFoundError } from '../model/errors.js';
import { isId, newId } from '../model/ids.js';
import { keys } from '../model/keys.js';
import { checkMitigationLimits, decodeMitigation, isExpired, parseMitigationInput, type Mitigation } from '../model/mitigation.js';
import type { Store } from '../store/store.js';
import { MAX_ATTEMPTS } from './repo.js';

export interface MitigationView extends Mitigation {
  /** True once expires_at has passed: edges no longer apply it (delete it to tidy up). */
  expired: boolean;
  /** Packets it matched and dropped, summed over the edges that report counters. */
  stats: RuleCounters;
}

export interface NodeCountersSummary {
  id: string;
  updated_at: string;
}

const ZERO: RuleCounters = { packets: 0, bytes: 0, dropped_packets: 0, dropped_bytes: 0 };

export class DataplaneRepo {
  constructor(private readonly store: Store) {}

  private async mitigationList(): Promise<{ rule: Mitigation; modRevision: number; key: string }[]> {
    const { items } = await this.store.list(keys.mitigationsPrefix);
    const out: { rule: Mitigation; modRevision: number; key: string }[] = [];
    for (const kv of items) {
      try {
        out.push({ rule: decodeMitigation(kv.value), modRevision: kv.modRevision, key: kv.key });
      } catch {
        // A rule this version cannot read is not listed (agents report it in their status).
      }
    }
    return out;
  }

  /** Every rule, oldest first, with its state and statistics. */
  async mitigations(now = Date.now()): Promise<MitigationView[]> {
    const [list, counters] = await Promise.all([this.mitigationList(), this.nodeCounters()]);
    const stats = sumRuleCounters(counters.map((c) => c.mitigations));
    return list
      .map(({ rule }) => ({ ...rule, expired: isExpired(rule, now), stats: stats[rule.id] ?? { ...ZERO } }))
      .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
  }

  async mitigation(id: string, now = Date.now()): Promise<{ value: MitigationView; revision: number }> {
    const kv = isId(id) ? await this.store.get(keys.mitigation(id)) : undefined;
    if (!kv) throw new NotFoundError(`no mitigation rule with id ${id}`);
    const rule = decodeMitigation(kv.value);
    const counters = await this.nodeCounters();
    const stats = sumRuleCounters(counters.map((c) => c.mitigations))[id] ?? { ...ZERO };
    return { value: { ...rule, expired: isExpired(rule, now), stats }, revision: kv.modRevision };
  }

  /** Validates and stores a new rule; refuses one that would overflow the data plane (409, field prefix). */
  async createMitigation(input: unknown, now = new Date()): Promise<{ value: MitigationView; revision: number }> {
    const rule = parseMitigationInput(input, newId(), now);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const existing = await this.mitigationList();
      const active = existing.map((e) => e.rule).filter((r) => !isExpired(r, now.getTime()));
      checkMitigationLimits([...active, rule], rule);
      const txn = await this.store.txn(
        [...existing.map((e) => ({ key: e.key, modRevision: e.modRevision })), { key: keys.mitigation(rule.id), modRevision: 0 }],
        [{ type: 'put', key: keys.mitigation(rule.id), value: JSON.stringify(rule) }],
      );
      if (txn.succeeded) return { value: { ...rule, expired: false, stats: { ...ZERO } }, revision: txn.revision };
    }
    throw new ConflictError(undefined, 'mitigation rules are being changed by others at the same time; try again');
  }

  async deleteMitigation(id: string): Promise<void> {
    const kv = isId(id) ? await this.store.get(keys.mitigation(id)) : undefined;
    if (!kv) throw new NotFoundError(`no mitigation rule with id ${id}`);
    await this.store.txn([{ key: kv.key, modRevision: kv.modRevision }], [{ type: 'delete', key: kv.key }]);
  }

  /** Every node's published counters (unreadable documents are skipped: they are statistics). */
  async nodeCounters(): Promise<(ReturnType<typeof decodeNodeCounters> & {})[]> {
    const { items } = await this.store.list(keys.nodesPrefix);
    const out = [];
    for (const kv of items) {
      if (!kv.key.endsWith('/counters')) continue;
      const c = decodeNodeCounters(kv.value);
      if (c) out.push({ ...c, node_id: kv.key.slice(keys.nodesPrefix.length, -'/counters'.length) });
    }
    return out;
  }

  /** Counters summed over nodes, optionally of one account only. */
  async counters(accountId?: string): Promise<{ items: CounterItem[]; nodes: NodeCountersSummary[] }> {
    const nodes = await this.nodeCounters();
    const items = sumCounterItems(nodes.map((n) => n.items)).filter((i) => accountId === undefined || i.account_id === accountId);
    return { items, nodes: nodes.map((n) => ({ id: n.node_id, updated_at: n.updated_at })) };
  }
}
