/**
 * The registry document (keys.registry): the small cross-account index every write that changes an account's
 * name, prefixes or tunnels compares and rewrites (compare-and-swap), so two tenants can never claim overlapping
 * prefixes, the same tunnel endpoints or overlapping tunnel subnets, whatever the interleaving of their writes.
 */
import { tunnelAddresses } from './gre-tunnel.js';
import type { AccountDocument, Registry, RegistryAccount } from './schemas.js';

export function emptyRegistry(): Registry {
  return { names: {}, accounts: {} };
}

/**
 * Decap tells tunnels apart by (outer source, outer destination) = (customer endpoint, edge endpoint), so that
 * pair names one tunnel across every account.
 */
export function greEndpointKey(t: { customer_gre_endpoint: string; edge_gre_endpoint: string }): string {
  return `${t.customer_gre_endpoint}>${t.edge_gre_endpoint}`;
}

export function registryEntryOf(doc: AccountDocument): RegistryAccount {
  return {
    name: doc.name,
    prefixes: doc.prefixes.map((p) => p.cidr),
    gre_endpoints: doc.gre_tunnels.map(greEndpointKey),
    tunnel_subnets: doc.gre_tunnels.map((t) => tunnelAddresses(t.interface_address).subnet),
  };
}

/** True when the account's registry entry would change (so the write must compare and rewrite the registry). */
export function registryEntryChanged(registry: Registry, doc: AccountDocument): boolean {
  const old = registry.accounts[doc.id];
  if (!old || registry.names[doc.name] !== doc.id) return true;
  return JSON.stringify(old) !== JSON.stringify(registryEntryOf(doc));
}

/** A copy of the registry with the account's entry (and name) set from its document. */
export function withAccount(registry: Registry, doc: AccountDocument): Registry {
  const next = withoutAccount(registry, doc.id);
  next.names[doc.name] = doc.id;
  next.accounts[doc.id] = registryEntryOf(doc);
  return next;
}

/** A copy of the registry without the account. */
export function withoutAccount(registry: Registry, accountId: string): Registry {
  const names: Record<string, string> = {};
  for (const [name, id] of Object.entries(registry.names)) if (id !== accountId) names[name] = id;
  const accounts: Record<string, RegistryAccount> = {};
  for (const [id, entry] of Object.entries(registry.accounts)) if (id !== accountId) accounts[id] = entry;
  return { names, accounts };
}
