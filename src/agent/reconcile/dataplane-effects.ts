/**
 * Every write the data-plane manager (dataplane.ts) makes goes through one of two implementations of
 * DataplaneEffects, chosen once when the manager is made:
 *
 *   kernelEffects()  the agent: loads and pins objects, attaches programs, writes maps, saves files
 *   planEffects()    `opentransit plan`: writes nothing. Maps are wrapped in OverlayMaps (reads see the pinned map
 *                    plus the writes recorded so far; writes go to the overlay only), attach/load/save do nothing,
 *                    and a device or namespace that does not exist yet reads as "to be created" instead of failing
 *
 * So the diff code (what to compare, which change line to report) is one code path for both: the plan cannot
 * drift from what the agent does. A new kind of write (another attach, another file) belongs here, not behind an
 * `if (dryRun)` in the diff code.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { MAPS, type MapSpec } from '../../kernel/bpf/abi.generated.js';
import {
  attachTc,
  attachXdp,
  detachXdp,
  ifIndex,
  netnsCookie,
  queryTc,
  type BpfProgram,
  type TcDirection,
  type TypedMap,
  type UpdateFlag,
  type XdpMode,
} from '../../kernel/bpf/index.js';
import { loadDataplane, type Dataplane, type DataplaneMaps, type DataplaneObjects } from '../../kernel/bpf/dataplane.js';
import { setLinkFeatures } from '../../kernel/links.js';
import type { DataplaneNumbers } from './dataplane-numbers.js';

/** What the diff code uses of a map: a TypedMap, or an OverlayMap standing for one. */
export type MapAccess<K, V> = Pick<TypedMap<K, V>, 'spec' | 'get' | 'getPerCpu' | 'set' | 'setMany' | 'delete' | 'entries'>;

type MapsOf<T> = { [P in keyof T]: T[P] extends TypedMap<infer K, infer V> ? MapAccess<K, V> : never };
/** The data plane's maps as the manager writes them (the ring buffer is read elsewhere). */
export type PlaneMaps = MapsOf<Omit<DataplaneMaps, 'samples'>>;

/** The ABI spec of each map (an overlay without a pinned map still encodes keys and values). */
const SPECS: { [P in keyof PlaneMaps]: MapSpec<never, never> } = {
  config: MAPS.ot_config,
  counters: MAPS.ot_counters,
  blocklist: MAPS.ot_blocklist,
  bl4Slash16: MAPS.ot_bl4_slash16,
  bl4Pages: MAPS.ot_bl4_pages,
  bl4L2: MAPS.ot_bl4_l2,
  prefixes: MAPS.ot_prefixes,
  mitigation: MAPS.ot_mitigation,
  generation: MAPS.ot_generation,
  rlState: MAPS.ot_rl_state,
  ruleStats: MAPS.ot_rule_stats,
  anycast: MAPS.ot_anycast,
  grePeers: MAPS.ot_gre_peers,
  delivery: MAPS.ot_delivery,
  tunnels: MAPS.ot_tunnels,
  hostLocal: MAPS.ot_host_local,
} as unknown as { [P in keyof PlaneMaps]: MapSpec<never, never> };

const ARRAY_TYPES = new Set([2 /* ARRAY */, 6 /* PERCPU_ARRAY */]);

/**
 * A map as it would be after the writes recorded so far: reads go to the overlay, then to the pinned map (none on
 * a node where nothing is loaded yet: an empty map, or zeros for an array, as a fresh load would make it).
 */
export class OverlayMap<K, V> implements MapAccess<K, V> {
  private readonly written = new Map<string, { k: K; v: V } | null>();

  constructor(
    readonly spec: MapSpec<K, V>,
    private readonly base: MapAccess<K, V> | undefined,
  ) {}

  private hex(k: K): string {
    return this.spec.key.encode(k).toString('hex');
  }

  private zero(): V | undefined {
    return ARRAY_TYPES.has(this.spec.type) ? this.spec.value.decode(Buffer.alloc(this.spec.value.size)) : undefined;
  }

  get(k: K): V | undefined {
    const w = this.written.get(this.hex(k));
    if (w !== undefined) return w === null ? this.zero() : w.v;
    return this.base ? this.base.get(k) : this.zero();
  }

  getPerCpu(k: K): V[] | undefined {
    const w = this.written.get(this.hex(k));
    if (w) return [w.v];
    return this.base?.getPerCpu(k);
  }

  set(k: K, v: V, _flag?: UpdateFlag): void {
    this.written.set(this.hex(k), { k, v });
  }

  setMany(entries: readonly (readonly [K, V])[], _flag?: UpdateFlag): number {
    for (const [k, v] of entries) this.set(k, v);
    return entries.length;
  }

  delete(k: K): boolean {
    const key = this.hex(k);
    const w = this.written.get(key);
    const existed = w !== undefined ? w !== null : this.entries().some(([x]) => this.hex(x) === key);
    this.written.set(key, null);
    return existed;
  }

  entries(): [K, V][] {
    const out: [K, V][] = [];
    for (const [k, v] of this.base?.entries() ?? []) if (!this.written.has(this.hex(k))) out.push([k, v]);
    for (const w of this.written.values()) if (w) out.push([w.k, w.v]);
    return out;
  }
}

/** A program as the manager refers to it: loaded (prog set), or one that a plan says would be loaded. */
export interface ProgRef {
  id: number;
  name: string;
  prog?: BpfProgram;
}

export interface LoadRequest {
  node: string;
  base?: string;
  objects: Required<DataplaneObjects>;
}

export interface DataplaneEffects {
  readonly dryRun: boolean;
  /** Loads and pins the objects (plan: undefined, nothing loaded). */
  load(o: LoadRequest): Dataplane | undefined;
  /** The maps the diff code reads and writes. */
  maps(dp: Dataplane | undefined): PlaneMaps;
  /** Writes a small file atomically (temp file + rename). */
  writeFile(path: string, text: string): void;
  /** Persists the numbers (plan: they stay in memory only). */
  saveNumbers(numbers: DataplaneNumbers): void;
  attachXdp(o: { ifindex: number; netns: string; prog: ProgRef; mode: XdpMode; replace: BpfProgram | null }): void;
  detachXdp(o: { ifindex: number; netns: string; mode: XdpMode; expected: BpfProgram }): void;
  /** `filter`: the filter's handle and priority (default 1 and 1). */
  attachTc(o: { ifindex: number; netns: string; direction: TcDirection; prog: ProgRef; filter?: TcFilterRef }): void;
  setGro(netns: string, dev: string): Promise<void>;
  /** A device's ifindex; plan: undefined when the device (or its namespace) does not exist yet. */
  ifindex(dev: string, netns: string): number | undefined;
  /** A namespace's cookie; plan: undefined when it does not exist yet. */
  cookie(netns: string): bigint | undefined;
  /** The program attached at a tc hook (0: none; also when the device is still to be created). */
  queryTc(o: { ifindex: number | undefined; netns: string; direction: TcDirection; filter?: TcFilterRef }): number;
}

/** Which tc filter (handle, priority) on a hook. */
export interface TcFilterRef {
  handle: number;
  priority: number;
}

function requireProg(p: ProgRef): BpfProgram {
  if (!p.prog) throw new Error(`program ${p.name} is not loaded`);
  return p.prog;
}

/** The agent's effects: every write happens. */
export function kernelEffects(): DataplaneEffects {
  return {
    dryRun: false,
    load: (o) => loadDataplane(o),
    maps: (dp) => {
      if (!dp) throw new Error('data plane not loaded');
      const { samples: _samples, ...maps } = dp.maps;
      return maps;
    },
    writeFile(path, text) {
      const tmp = `${path}.tmp`;
      writeFileSync(tmp, text);
      renameSync(tmp, path);
    },
    saveNumbers: (numbers) => numbers.save(),
    attachXdp: (o) => attachXdp({ ...o, prog: requireProg(o.prog) }),
    detachXdp: (o) => detachXdp(o),
    attachTc: ({ filter, ...o }) => void attachTc({ ...o, ...filter, prog: requireProg(o.prog) }),
    setGro: (netns, dev) => setLinkFeatures(netns, dev, { gro: true }),
    ifindex: (dev, netns) => ifIndex(dev, netns),
    cookie: (netns) => netnsCookie(netns),
    queryTc: ({ filter, ...o }) => queryTc({ ...o, ...filter, ifindex: o.ifindex! }),
  };
}

/** `opentransit plan`'s effects: nothing is written anywhere; every write is only described by the diff code. */
export function planEffects(): DataplaneEffects {
  const absent = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch {
      return undefined;
    }
  };
  return {
    dryRun: true,
    load: () => undefined,
    maps: (dp) => {
      const out: Record<string, OverlayMap<unknown, unknown>> = {};
      for (const [name, spec] of Object.entries(SPECS)) {
        const base = dp ? (dp.maps[name as keyof PlaneMaps] as unknown as MapAccess<unknown, unknown>) : undefined;
        out[name] = new OverlayMap(spec as MapSpec<unknown, unknown>, base);
      }
      return out as unknown as PlaneMaps;
    },
    writeFile: () => {},
    saveNumbers: () => {},
    attachXdp: () => {},
    detachXdp: () => {},
    attachTc: () => {},
    setGro: async () => {},
    ifindex: (dev, netns) => absent(() => ifIndex(dev, netns)),
    cookie: (netns) => absent(() => netnsCookie(netns)),
    queryTc: ({ filter, ...o }) => (o.ifindex === undefined ? 0 : (absent(() => queryTc({ ...o, ...filter, ifindex: o.ifindex! })) ?? 0)),
  };
}
