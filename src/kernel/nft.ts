/**
 * nftables through JSON only, in-process through libnftables (what the `nft` tool is built on; native/nft.cc): a
 * document built from objects (JSON.stringify does all quoting) runs as `nft -j -f FILE` would, listings come back
 * as `nft -j list …` prints them. Never nft text, never string concatenation of user input. No process is spawned:
 * each call makes an nft context inside the namespace, runs the document and frees the context (native/nft.cc: on
 * a thread of its own, so that the slow socket close after a commit — an RCU grace period — is not waited for).
 *
 * Ownership: one whole table per owner (the agent names it, e.g. `ot_<account>` in the host netns or a fixed name
 * inside a customer's own netns), replaced atomically.
 *
 * Why replacing a whole table is atomic and does not disturb traffic: the document is ONE nft transaction
 * (add table; delete table; add table; sets; chains; rules). The kernel commits a transaction at once — packets
 * see the old ruleset or the new one, never a mix. New base chains are registered while the transaction is
 * prepared but take their `drop` policy only at commit (the kernel's nft_chain_commit_drop_policy), and the old
 * chains keep filtering until the same commit removes them. The test in test/privileged/kernel-nft.test.ts pings
 * through a policy-drop chain while the table is replaced and counts no loss.
 * Side effect to know: rule counters restart at zero with every replace (the rules are new objects).
 */
import { nftRun } from './bpf/index.js';
import { KernelError, KernelInputError } from './exec.js';
import { nativeKernelCallAsync, type NetnsRef } from './netns.js';
import { netnsIdentity, nftGeneration } from './netlink/socket.js';

export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';
const FAMILIES: readonly NftFamily[] = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'];
export type NftHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress' | 'egress';
const HOOKS: readonly NftHook[] = ['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress'];

/** Any JSON value of the libnftables-json schema (see `man libnftables-json`). */
export type NftJson = string | number | boolean | null | NftJson[] | { [key: string]: NftJson };
/** One statement of a rule, e.g. `{ counter: null }` or `{ match: { op: '==', left: …, right: … } }`. */
export type NftStatement = { [key: string]: NftJson };
/** One command of a JSON document, e.g. `{ add: { element: { … } } }`. */
export type NftCommand = { [verb: string]: { [object: string]: NftJson } };

export interface NftBaseChain {
  type: 'filter' | 'nat' | 'route';
  hook: NftHook;
  /** Lower runs first. */
  prio: number;
  /** Default accept. */
  policy?: 'accept' | 'drop';
  /** Required for the netdev family's ingress/egress hooks. */
  dev?: string;
}

export interface NftChainSpec {
  name: string;
  /** Absent for a regular chain (reached by jump/goto). */
  base?: NftBaseChain;
  rules: readonly NftRuleSpec[];
}

export interface NftRuleSpec {
  expr: readonly NftStatement[];
  /** Maps a rule back to its origin (e.g. a firewall rule id): read back with counters by `readRuleCounters`. */
  comment?: string;
}

export interface NftSetSpec {
  name: string;
  /** e.g. 'ipv4_addr', or a concatenation ['ipv4_addr', 'inet_service']. */
  type: string | readonly string[];
  flags?: readonly ('constant' | 'interval' | 'timeout')[];
  /** Merge adjacent/overlapping interval elements instead of failing. */
  autoMerge?: boolean;
  /** Elements as nft JSON: '192.0.2.1', { prefix: { addr, len } }, { range: [a, b] }, 443… */
  elements?: readonly NftJson[];
}

export interface NftTableSpec {
  family: NftFamily;
  name: string;
  sets?: readonly NftSetSpec[];
  chains: readonly NftChainSpec[];
  /**
   * An opaque version (e.g. a hash of the desired state) stored in the table, so a reconciler can tell with one
   * read whether the kernel already holds this version instead of comparing normalised expressions.
   */
  version?: string;
}

/** The regular chain (never jumped to) whose one rule's comment carries NftTableSpec.version. nft 1.0.6 keeps no table comment. */
export const NFT_VERSION_CHAIN = 'ot_version';
const VERSION_PREFIX = 'version:';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

function checkName(field: string, v: unknown): string {
  if (typeof v !== 'string' || !NAME_RE.test(v))
    throw new KernelInputError(field, `must be 1–64 characters of [A-Za-z0-9_-] starting with a letter or '_', got ${JSON.stringify(v)}`);
  return v;
}

function checkFamily(v: unknown): NftFamily {
  if (!FAMILIES.includes(v as NftFamily)) throw new KernelInputError('family', `must be one of ${FAMILIES.join(', ')}, got ${JSON.stringify(v)}`);
  return v as NftFamily;
}

function checkComment(field: string, v: unknown): string {
  // nft limits comments to 128 bytes; control characters would garble listings.
  if (typeof v !== 'string' || v.length === 0 || Buffer.byteLength(v) > 128 || /[\x00-\x1f\x7f]/.test(v))
    throw new KernelInputError(field, `must be 1–128 bytes without control characters, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Strings starting with '@' are set references in nft JSON. Every one must name a set of this table, so a value
 * that slipped through from user input cannot silently become a reference.
 */
function checkSetRefs(field: string, v: NftJson, sets: ReadonlySet<string>): void {
  if (typeof v === 'string') {
    if (v.startsWith('@') && !sets.has(v.slice(1))) throw new KernelInputError(field, `references set ${v.slice(1)} which this table does not define`);
  } else if (Array.isArray(v)) v.forEach((x, i) => checkSetRefs(`${field}[${i}]`, x, sets));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) checkSetRefs(`${field}.${k}`, x, sets);
}

/**
 * The JSON document that replaces table `spec` as one transaction (see the module comment). Exposed so callers can
 * inspect or log it; `replaceNftTable` runs it.
 *
 * With `create`, the document makes a table that must not exist yet (`create table`: the whole transaction fails
 * with EEXIST when it does, so it can never append to a live table) instead of add + delete + add. Why it exists:
 * a commit that deleted anything leaves destroy work that the kernel flushes — one RCU grace period, 12–16 ms
 * measured on the 2-core VM — when the nftables socket is closed, and libnftables use is serialised, so the next
 * nft call of ANY namespace waits for it. A cold start creates every table once: nothing to delete, nothing to wait.
 */
export function nftReplaceTableDocument(spec: NftTableSpec, opts: { create?: boolean } = {}): { nftables: NftCommand[] } {
  const family = checkFamily(spec.family);
  const table = checkName('name', spec.name);
  const sets = spec.sets ?? [];
  const setNames = new Set<string>();
  sets.forEach((s, i) => {
    const n = checkName(`sets[${i}].name`, s.name);
    if (setNames.has(n)) throw new KernelInputError(`sets[${i}].name`, `duplicate set ${n}`);
    setNames.add(n);
  });
  const chainNames = new Set<string>();
  spec.chains.forEach((c, i) => {
    const n = checkName(`chains[${i}].name`, c.name);
    if (n === NFT_VERSION_CHAIN) throw new KernelInputError(`chains[${i}].name`, `${n} is reserved`);
    if (chainNames.has(n)) throw new KernelInputError(`chains[${i}].name`, `duplicate chain ${n}`);
    chainNames.add(n);
  });

  const cmds: NftCommand[] = [
    { metainfo: { json_schema_version: 1 } } as unknown as NftCommand,
    ...(opts.create
      ? [{ create: { table: { family, name: table } } } as unknown as NftCommand]
      : // add + delete + add: the delete needs the table to exist; all three are one transaction.
        [{ add: { table: { family, name: table } } }, { delete: { table: { family, name: table } } }, { add: { table: { family, name: table } } }]),
  ];
  sets.forEach((s, i) => {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (types.length === 0) throw new KernelInputError(`sets[${i}].type`, 'is empty');
    types.forEach((t, j) => {
      if (typeof t !== 'string' || !/^[a-z0-9_]{1,32}$/.test(t)) throw new KernelInputError(`sets[${i}].type[${j}]`, `not a type name: ${JSON.stringify(t)}`);
    });
    const set: { [k: string]: NftJson } = { family, table, name: s.name, type: types.length === 1 ? types[0]! : [...types] };
    if (s.flags?.length) set.flags = [...s.flags];
    if (s.autoMerge) set['auto-merge'] = true;
    if (s.elements?.length) {
      s.elements.forEach((e, j) => checkSetRefs(`sets[${i}].elements[${j}]`, e, new Set()));
      set.elem = [...s.elements];
    }
    cmds.push({ add: { set } });
  });
  // All chains before any rule: a rule may jump to a chain defined later.
  for (const [i, c] of spec.chains.entries()) {
    const chain: { [k: string]: NftJson } = { family, table, name: c.name };
    if (c.base) {
      if (!['filter', 'nat', 'route'].includes(c.base.type)) throw new KernelInputError(`chains[${i}].base.type`, 'must be filter, nat or route');
      if (!HOOKS.includes(c.base.hook)) throw new KernelInputError(`chains[${i}].base.hook`, `must be one of ${HOOKS.join(', ')}`);
      if (!Number.isInteger(c.base.prio) || Math.abs(c.base.prio) > 0x7fffffff) throw new KernelInputError(`chains[${i}].base.prio`, 'must be an integer');
      chain.type = c.base.type;
      chain.hook = c.base.hook;
      chain.prio = c.base.prio;
      chain.policy = c.base.policy ?? 'accept';
      if (c.base.policy !== undefined && c.base.policy !== 'accept' && c.base.policy !== 'drop')
        throw new KernelInputError(`chains[${i}].base.policy`, 'must be accept or drop');
      if (c.base.dev !== undefined) {
        if (!/^[A-Za-z0-9_-]{1,15}$/.test(c.base.dev)) throw new KernelInputError(`chains[${i}].base.dev`, 'must be an interface name');
        chain.dev = c.base.dev;
      }
    }
    cmds.push({ add: { chain } });
  }
  for (const [i, c] of spec.chains.entries()) {
    for (const [j, r] of c.rules.entries()) {
      const field = `chains[${i}].rules[${j}]`;
      if (!Array.isArray(r.expr) || r.expr.length === 0) throw new KernelInputError(`${field}.expr`, 'must be a non-empty list of statements');
      r.expr.forEach((st, k) => {
        if (st === null || typeof st !== 'object' || Array.isArray(st) || Object.keys(st).length !== 1)
          throw new KernelInputError(`${field}.expr[${k}]`, 'must be an object with exactly one statement key');
        checkSetRefs(`${field}.expr[${k}]`, st, setNames);
      });
      const rule: { [k: string]: NftJson } = { family, table, chain: c.name, expr: [...r.expr] };
      if (r.comment !== undefined) rule.comment = checkComment(`${field}.comment`, r.comment);
      cmds.push({ add: { rule } });
    }
  }
  if (spec.version !== undefined) {
    const comment = checkComment('version', VERSION_PREFIX + spec.version);
    cmds.push({ add: { chain: { family, table, name: NFT_VERSION_CHAIN } } });
    cmds.push({ add: { rule: { family, table, chain: NFT_VERSION_CHAIN, comment, expr: [{ return: null }] } } });
  }
  return { nftables: cmds };
}

/** The twin named in errors: `nft -j ARGS…`, inside `ip netns exec NS` when ns is a name. */
const nftArgv = (ns: NetnsRef, args: readonly string[]) => (ns === null ? ['nft', '-j', ...args] : ['ip', 'netns', 'exec', ns, 'nft', '-j', ...args]);

/**
 * Runs one JSON document through libnftables inside ns and returns what it printed (listings); a refusal is a
 * KernelError carrying nft's own messages, named by `argv` (the CLI twin).
 */
async function runNft(ns: NetnsRef, argv: readonly string[], doc: unknown): Promise<string> {
  const text = JSON.stringify(doc);
  // A missing namespace or a failed context is a KernelError too (e.g. ENOENT: "open netns …: No such file…").
  const r = await nativeKernelCallAsync(argv, () => nftRun(ns ?? undefined, text));
  if (r.rc !== 0) {
    // nft prefixes each message with its input location ("internal:0:0-0: Error: …"); keep the reason.
    const msg = r.stderr.split('\n').map((l) => l.replace(/^internal:\S*\s*/, '').trim()).filter(Boolean).join('; ');
    throw new KernelError({ argv, exitCode: r.rc, stderr: r.stderr, kernelMessage: msg || `libnftables status ${r.rc}` });
  }
  return r.stdout;
}

/** runNft for a `list …` document: the parsed JSON listing. */
async function listNft<T>(ns: NetnsRef, argv: readonly string[], doc: unknown): Promise<T> {
  const out = await runNft(ns, argv, doc);
  try {
    return JSON.parse(out) as T;
  } catch (e) {
    throw new KernelError({ argv, exitCode: 0, stderr: '', kernelMessage: `unparsable JSON output: ${(e as Error).message}` });
  }
}

/**
 * Twin: `nft -j -f FILE` (in NS): runs a JSON document as one transaction, in-process (libnftables inside the
 * namespace). All of it is committed or none of it.
 */
export async function applyNftDocument(ns: NetnsRef, doc: { nftables: readonly NftCommand[] }): Promise<void> {
  await runNft(ns, nftArgv(ns, ['-f', '-']), doc);
}

/** Twin: `nft -j -f FILE` with the replace document (one spawn, one transaction). */
export async function replaceNftTable(ns: NetnsRef, spec: NftTableSpec): Promise<void> {
  await applyNftDocument(ns, nftReplaceTableDocument(spec));
}

/**
 * Twin: `nft -j -f FILE` with `create table` + the table's contents (one transaction): makes a table that does not
 * exist yet; fails with code EEXIST, changing nothing, when it does (then replace it). Cheaper than replaceNftTable
 * for a new table: no delete, so no RCU wait when the context closes (see nftReplaceTableDocument).
 */
export async function createNftTable(ns: NetnsRef, spec: NftTableSpec): Promise<void> {
  // The refusal's text ("Could not process rule: File exists") classifies as EEXIST.
  await applyNftDocument(ns, nftReplaceTableDocument(spec, { create: true }));
}

/** Twin: `nft -j -f FILE` with `add table` + `delete table` in one transaction: succeeds when absent. */
export async function deleteNftTableIfPresent(ns: NetnsRef, family: NftFamily, name: string): Promise<void> {
  const t = { family: checkFamily(family), name: checkName('name', name) };
  await applyNftDocument(ns, { nftables: [{ add: { table: t } }, { delete: { table: t } }] });
}

export interface NftTableRef {
  family: NftFamily;
  name: string;
  handle: number;
}

type ListDoc = { nftables: Record<string, Record<string, NftJson>>[] };

/** Twin: `nft -j list tables` (in NS): tables whose name starts with `prefix`. */
export async function listNftTables(ns: NetnsRef, prefix = ''): Promise<NftTableRef[]> {
  const doc = await listNft<ListDoc>(ns, nftArgv(ns, ['list', 'tables']), { nftables: [{ list: { tables: null } }] });
  return doc.nftables
    .filter((o) => o.table)
    .map((o) => o.table as unknown as NftTableRef)
    .filter((t) => t.name.startsWith(prefix))
    .map((t) => ({ family: t.family, name: t.name, handle: t.handle }));
}

export interface NftCounter {
  packets: number;
  bytes: number;
}

export interface NftRule {
  chain: string;
  handle: number;
  comment?: string;
  /** The rule's statements as nft lists them (normalised by nft: counters carry values). */
  expr: NftStatement[];
  /** The first counter statement's values, when the rule has one. */
  counter?: NftCounter;
}

export interface NftTableState {
  family: NftFamily;
  name: string;
  handle: number;
  /** NftTableSpec.version as stored, if any. */
  version?: string;
  sets: { name: string; type: string | string[]; flags: string[]; elements: NftJson[] }[];
  chains: { name: string; handle: number; base?: NftBaseChain }[];
  /** Rules in list order (per chain, in evaluation order); the version chain is left out. */
  rules: NftRule[];
}

/** Twin: `nft -j list table FAMILY NAME` (in NS); null when the table does not exist. */
export async function readNftTable(ns: NetnsRef, family: NftFamily, name: string): Promise<NftTableState | null> {
  checkFamily(family);
  checkName('name', name);
  let doc: ListDoc;
  try {
    doc = await listNft<ListDoc>(ns, nftArgv(ns, ['list', 'table', family, name]), { nftables: [{ list: { table: { family, name } } }] });
  } catch (e) {
    if (e instanceof KernelError && e.code === 'ENOENT') return null;
    throw e;
  }
  return parseNftTable(doc);
}

/** Per namespace and table: the namespace's identity and nftables generation at the last full read, and its answer. */
const versionsSeen = new Map<string, { identity: string; gen: number; version: Pick<NftTableState, 'version'> | null }>();

/** How many tables readNftTableVersion remembers (tests: a deleted namespace leaves nothing behind). */
export const nftVersionsRemembered = (): number => versionsSeen.size;

/** Forgets what readNftTableVersion learnt about a namespace's tables (the namespace is being deleted). */
export function forgetNftVersions(ns: string): void {
  for (const key of versionsSeen.keys()) if (key.startsWith(`${ns}|`)) versionsSeen.delete(key);
}

/**
 * readNftTable's answer for the version alone (null: no such table), from the last full read while the namespace's
 * nftables generation has not moved since (nothing in its ruleset was committed: nftGeneration). An agent re-checks
 * every customer's table each resync period: one small request instead of a libnftables listing (~0.8 ms each).
 * The generation is read before the listing, so a change racing with the read moves it and forces the next read.
 */
export async function readNftTableVersion(ns: string, family: NftFamily, name: string): Promise<Pick<NftTableState, 'version'> | null> {
  const key = `${ns}|${family}|${name}`;
  const identity = netnsIdentity(ns);
  const gen = identity === undefined ? undefined : await nftGeneration(ns).catch(() => undefined);
  const seen = versionsSeen.get(key);
  if (gen !== undefined && seen && seen.identity === identity && seen.gen === gen) return seen.version;
  const table = await readNftTable(ns, family, name);
  const version = table && (table.version === undefined ? {} : { version: table.version });
  if (gen !== undefined && identity !== undefined) versionsSeen.set(key, { identity, gen, version });
  else versionsSeen.delete(key);
  return version;
}

export function parseNftTable(doc: ListDoc): NftTableState | null {
  let out: NftTableState | null = null;
  for (const o of doc.nftables) {
    const [kind, v] = Object.entries(o)[0] ?? [];
    if (!kind || !v) continue;
    const f = v as Record<string, NftJson>;
    if (kind === 'table') out = { family: f.family as NftFamily, name: f.name as string, handle: f.handle as number, sets: [], chains: [], rules: [] };
    if (!out) continue;
    if (kind === 'set') {
      out.sets.push({
        name: f.name as string,
        type: f.type as string | string[],
        flags: (f.flags as string[] | undefined) ?? [],
        elements: (f.elem as NftJson[] | undefined) ?? [],
      });
    } else if (kind === 'chain') {
      if (f.name === NFT_VERSION_CHAIN) continue;
      const c: NftTableState['chains'][number] = { name: f.name as string, handle: f.handle as number };
      if (f.hook !== undefined) {
        c.base = { type: f.type as NftBaseChain['type'], hook: f.hook as NftHook, prio: f.prio as number, policy: f.policy as 'accept' | 'drop' };
        if (f.dev !== undefined) c.base.dev = f.dev as string;
      }
      out.chains.push(c);
    } else if (kind === 'rule') {
      const comment = f.comment as string | undefined;
      if (f.chain === NFT_VERSION_CHAIN) {
        if (comment?.startsWith(VERSION_PREFIX)) out.version = comment.slice(VERSION_PREFIX.length);
        continue;
      }
      const expr = (f.expr as NftStatement[] | undefined) ?? [];
      const rule: NftRule = { chain: f.chain as string, handle: f.handle as number, expr };
      if (comment !== undefined) rule.comment = comment;
      const counter = expr.find((s) => s.counter && typeof s.counter === 'object')?.counter as { packets: number; bytes: number } | undefined;
      if (counter) rule.counter = { packets: counter.packets, bytes: counter.bytes };
      out.rules.push(rule);
    }
  }
  return out;
}

export interface NftRuleCounter extends NftCounter {
  chain: string;
  handle: number;
  comment?: string;
}

/** Twin: `nft -j list table FAMILY NAME`, reduced to the counters of rules that carry one. [] when the table is absent. */
export async function readRuleCounters(ns: NetnsRef, family: NftFamily, name: string): Promise<NftRuleCounter[]> {
  const t = await readNftTable(ns, family, name);
  return (t?.rules ?? [])
    .filter((r) => r.counter)
    .map((r) => ({ chain: r.chain, handle: r.handle, ...(r.comment !== undefined ? { comment: r.comment } : {}), ...r.counter! }));
}

/** Small builders for common statements, so callers write structure rather than JSON by hand. */
export const nftExpr = {
  /** `left OP right`, e.g. match(payload('ip', 'daddr'), '==', setRef('allowed')). */
  match: (left: NftJson, op: '==' | '!=' | '<' | '>' | '<=' | '>=' | 'in', right: NftJson): NftStatement => ({ match: { op, left, right } }),
  payload: (protocol: string, field: string): NftJson => ({ payload: { protocol, field } }),
  meta: (key: string): NftJson => ({ meta: { key } }),
  /** A reference to a named set of the same table. */
  setRef: (name: string): string => `@${checkName('set', name)}`,
  prefix: (addr: string, len: number): NftJson => ({ prefix: { addr, len } }),
  range: (lo: NftJson, hi: NftJson): NftJson => ({ range: [lo, hi] }),
  /** An anonymous set literal. */
  set: (elems: readonly NftJson[]): NftJson => ({ set: [...elems] }),
  counter: (): NftStatement => ({ counter: null }),
  accept: (): NftStatement => ({ accept: null }),
  drop: (): NftStatement => ({ drop: null }),
  return: (): NftStatement => ({ return: null }),
  jump: (chain: string): NftStatement => ({ jump: { target: checkName('chain', chain) } }),
  /** `meta mark set VALUE`. */
  setMark: (value: number): NftStatement => ({ mangle: { key: { meta: { key: 'mark' } }, value } }),
};
