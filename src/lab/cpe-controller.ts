/**
 * The lab's customer routers follow the store: every GRE tunnel whose customer_gre_endpoint is a customer router's
 * public address gets that router's side set up (decap from the anycast endpoint, the tunnel interface address,
 * return traffic through the tunnel or direct), and goes away when the tunnel does. It runs as one lab process
 * (`opentransit lab cpe-controller`), started by `lab up`, watching the lab's store (embedded or etcd).
 */
import { decodeAccountDocument } from '../model/account.js';
import { tunnelAddresses } from '../model/gre-tunnel.js';
import { accountIdOfKey, keys } from '../model/keys.js';
import type { AccountDocument } from '../model/schemas.js';
import { openStore } from '../store/open.js';
import { setupCustomerRouterGre, teardownCustomerRouterGre, type CpeTunnelSpec, type CustomerRouterGreSpec } from '../kernel/bpf/cpe.js';
import { LAB_BPF_PIN_ROOT } from './lab.js';
import { labPaths } from './paths.js';
import { labStoreSpec, readLabState, type LabState } from './state.js';

const CPE_NODE = 'cpe';

/** What each customer router of the plan should have, from every account's tunnels (pure). */
export function cpeSpecs(state: LabState, accounts: readonly AccountDocument[]): Map<string, CustomerRouterGreSpec | null> {
  const out = new Map<string, CustomerRouterGreSpec | null>();
  for (const c of state.plan.customers) {
    const tunnels: CpeTunnelSpec[] = [];
    const prefixes = new Set<string>();
    for (const a of accounts) {
      const mine = a.gre_tunnels.filter((t) => t.customer_gre_endpoint === c.publicAddress);
      if (mine.length === 0) continue;
      for (const t of mine) {
        const ends = tunnelAddresses(t.interface_address);
        tunnels.push({
          name: t.name,
          local: c.publicAddress,
          remote: t.edge_gre_endpoint,
          interfaceAddress: `${ends.customer}/${ends.length}`,
          peer: ends.edge,
          ttl: t.ttl,
          mtu: t.mtu,
        });
      }
      // IPv6 prefixes too: their replies go back inside the same IPv4 tunnels (cpe.ts: IPv6 return routes).
      for (const p of a.prefixes) prefixes.add(p.cidr);
    }
    out.set(
      c.routerHost,
      tunnels.length === 0
        ? null
        : {
            netns: c.routerNetns,
            node: CPE_NODE,
            base: `${LAB_BPF_PIN_ROOT}/${state.name}`,
            uplink: 'uplink',
            tunnels,
            returnPath: c.return,
            prefixes: [...prefixes].sort(),
          },
    );
  }
  return out;
}

export async function runCpeController(labName: string): Promise<void> {
  const state = await readLabState(labPaths(labName).stateFile);
  if (!state) throw new Error(`lab ${labName} is not up`);
  if (!state.api) throw new Error(`lab ${labName} has no API (is it up?)`);
  const spec = labStoreSpec(state);
  // The embedded store must exist already (the API made it); etcd may be down (a rehearsed outage) when the
  // controller restarts: its watch then waits for the cluster.
  const store = await openStore(spec, { lmdb: { create: false }, etcd: { requireConnection: false } });
  const accounts = new Map<string, AccountDocument>();
  const applied = new Map<string, string>();
  let synced = false;
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve();

  const reconcile = async () => {
    for (const [router, spec] of cpeSpecs(state, [...accounts.values()])) {
      const text = JSON.stringify(spec);
      if (applied.get(router) === text) continue;
      const c = state.plan.customers.find((x) => x.routerHost === router)!;
      try {
        if (spec) await setupCustomerRouterGre(spec);
        else if (applied.has(router)) await teardownCustomerRouterGre({ netns: c.routerNetns, node: CPE_NODE, base: `${LAB_BPF_PIN_ROOT}/${state.name}`, uplink: 'uplink' });
        applied.set(router, text);
        process.stdout.write(`${router}: ${spec ? `${spec.tunnels.length} tunnel(s): ${spec.tunnels.map((t) => `${t.name} ${t.local}→${t.remote}`).join(', ')}` : 'no tunnels'}\n`);
      } catch (err) {
        process.stdout.write(`${router}: ${(err as Error).message} (retrying)\n`);
        schedule(1000);
      }
    }
  };
  const schedule = (ms = 50) => {
    if (!synced || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = running.then(reconcile);
    }, ms);
  };

  const watch = await store.listAndWatch(keys.accountsPrefix, (e) => {
    if (e.type === 'synced') synced = true;
    else if (e.type === 'reset') accounts.clear();
    else {
      const key = e.type === 'put' ? e.kv.key : e.key;
      const id = accountIdOfKey(key);
      if (!id) return;
      if (e.type === 'put') accounts.set(id, decodeAccountDocument(e.kv.value));
      else accounts.delete(id);
    }
    schedule();
  });
  process.stdout.write(`cpe controller of lab ${labName}: watching ${spec}\n`);
  const stop = async () => {
    await watch.close();
    await running;
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}
