/**
 * The API's reads and writes of per-node operator data under the desired/ prefix the agents watch: a node's
 * configuration (keys.nodeConfig) and its drain flag (keys.nodeDrain). Each write is one compare-and-swap on its
 * own key, retried from a fresh read when it loses a race (unless If-Match pins a revision).
 */
import { StaleError, ConflictError } from '../model/errors.js';
import { keys } from '../model/keys.js';
import { decodeNodeConfig, nodeIdField, parseNodeConfigInput, parseDrainInput, type DrainRecord, type NodeConfig } from '../model/node-config.js';
import type { Store } from '../store/store.js';
import { MAX_ATTEMPTS, type Versioned } from './repo.js';

export class NodeRepo {
  constructor(private readonly store: Store) {}

  /** A node's config (the empty config, revision 0, when none was written). */
  async config(id: string): Promise<Versioned<NodeConfig>> {
    nodeIdField(id);
    const kv = await this.store.get(keys.nodeConfig(id));
    return { value: decodeNodeConfig(kv?.value), revision: kv?.modRevision ?? 0 };
  }

  /** Replaces a node's config; `password_set: true` keeps a peer's stored password. */
  async replaceConfig(id: string, input: unknown, ifMatch: number[] | undefined): Promise<{ value: NodeConfig; revision: number; changed: boolean }> {
    nodeIdField(id);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.config(id);
      if (ifMatch !== undefined && !ifMatch.includes(current.revision))
        throw new StaleError(`the node config is at revision ${current.revision}, not ${ifMatch.join(' or ')} (If-Match); read it again`);
      const next = parseNodeConfigInput(input, '', current.value);
      if (current.revision > 0 && JSON.stringify(next) === JSON.stringify(current.value)) return { value: next, revision: current.revision, changed: false };
      const txn = await this.store.txn(
        [{ key: keys.nodeConfig(id), modRevision: current.revision }],
        [{ type: 'put', key: keys.nodeConfig(id), value: JSON.stringify(next) }],
      );
      if (txn.succeeded) return { value: next, revision: txn.revision, changed: true };
    }
    throw new ConflictError(undefined, 'the node config is being changed by others at the same time; try again');
  }

  /** Removes a node's config (it falls back to the operator's settings). Idempotent. */
  async deleteConfig(id: string): Promise<void> {
    nodeIdField(id);
    await this.store.txn([], [{ type: 'delete', key: keys.nodeConfig(id) }]);
  }

  /** The drain record of a node, if drained. */
  async drain(id: string): Promise<DrainRecord | undefined> {
    nodeIdField(id);
    const kv = await this.store.get(keys.nodeDrain(id));
    if (!kv) return undefined;
    try {
      return JSON.parse(kv.value) as DrainRecord;
    } catch {
      // Agents only look at the key's presence; an old or hand-written value still means drained.
      return { drained_at: '' };
    }
  }

  /** Drains a node (its agent withdraws every announcement, sessions stay up). Keeps the first drain time. */
  async setDrain(id: string, input: unknown): Promise<DrainRecord> {
    nodeIdField(id);
    const record = parseDrainInput(input);
    const existing = await this.drain(id);
    if (existing && existing.reason === record.reason) return existing;
    await this.store.txn([], [{ type: 'put', key: keys.nodeDrain(id), value: JSON.stringify(record) }]);
    return record;
  }

  /** Ends a drain (idempotent). */
  async undrain(id: string): Promise<void> {
    nodeIdField(id);
    await this.store.txn([], [{ type: 'delete', key: keys.nodeDrain(id) }]);
  }
}
