/**
 * nftables through JSON only, in-process through libnftables (what the `nft` tool is built on; native/nft.cc): a
 * document built from objects (JSON.stringify does all quoting) runs as `nft -j -f FILE` would, listings come back
 * as `nft -j list …` prints them. Never nft text, never string concatenation of user input. No process is spawned:
 * each call makes an nft context inside the namespace, runs the document and frees the context (native/nft.cc: on
 * a thread of its own, so that the slow socket close after a commit — an RCU grace period — is not waited for).
 *
 * Ownership: one whole table per owner (the agent names it, e.g. `ot_<account>` in the host netns or a fixed name
 * inside a customer's own netns), brought to its desired contents atomically by replaceNftTable.
 *
 * Why that is atomic and does not disturb traffic: the change is ONE nft transaction, which the kernel commits at
 * once — packets see the old rules or the new ones, never a mix. The table is updated in place: every chain is
 * flushed and refilled, sets are left alone unless their elements change (then flushed and refilled in the same
 * transaction). Replacing the whole table (add, delete, re-create) is one transaction too, but a packet
 * looked up in one of its sets around the commit can miss an element both versions hold: measured, and why the
 * update in place is preferred, at nftUpdateTableDocument. The whole replace remains for a table that does not
 * exist yet and for changes an update cannot express (a set's type, a base chain's hook). New base chains take
 * their `drop` policy only at commit (the kernel's nft_chain_commit_drop_policy). The tests in
 * test/privileged/kernel-nft.test.ts send traffic through a policy-drop chain while the table is replaced and
 * count no loss.
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

/** A table spec, validated and turned into the commands that make its parts (see nftReplaceTableDocument). */
interface TableParts {
  family: NftFamily;
  table: string;
  /** `add set` without its elements, so an update can leave a set alone or refill it. */
  sets: { name: string; def: { [k: string]: NftJson }; elements: NftJson[]; flags: readonly string[] }[];
  chains: { name: string; base?: NftBaseChain; def: { [k: string]: NftJson } }[];
  rules: NftCommand[];
  /** The version chain's one rule, when spec.version is set. */
  versionRule?: NftCommand;
}

function tableParts(spec: NftTableSpec): TableParts {
  const family = checkFamily(spec.family);
  const table = checkName('name', spec.name);
  const setSpecs = spec.sets ?? [];
  const setNames = new Set<string>();
  setSpecs.forEach((s, i) => {
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

  const sets = setSpecs.map((s, i) => {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (types.length === 0) throw new KernelInputError(`sets[${i}].type`, 'is empty');
    types.forEach((t, j) => {
      if (typeof t !== 'string' || !/^[a-z0-9_]{1,32}$/.test(t)) throw new KernelInputError(`sets[${i}].type[${j}]`, `not a type name: ${JSON.stringify(t)}`);
    });
    const def: { [k: string]: NftJson } = { family, table, name: s.name, type: types.length === 1 ? types[0]! : [...types] };
    if (s.flags?.length) def.flags = [...s.flags];
    if (s.autoMerge) def['auto-merge'] = true;
    (s.elements ?? []).forEach((e, j) => checkSetRefs(`sets[${i}].elements[${j}]`, e, new Set()));
    return { name: s.name, def, elements: [...(s.elements ?? [])], flags: s.flags ?? [] };
  });
  const chains = spec.chains.map((c, i) => {
    const def: { [k: string]: NftJson } = { family, table, name: c.name };
    if (c.base) {
      if (!['filter', 'nat', 'route'].includes(c.base.type)) throw new KernelInputError(`chains[${i}].base.type`, 'must be filter, nat or route');
      if (!HOOKS.includes(c.base.hook)) throw new KernelInputError(`chains[${i}].base.hook`, `must be one of ${HOOKS.join(', ')}`);
      if (!Number.isInteger(c.base.prio) || Math.abs(c.base.prio) > 0x7fffffff) throw new KernelInputError(`chains[${i}].base.prio`, 'must be an integer');
      def.type = c.base.type;
      def.hook = c.base.hook;
      def.prio = c.base.prio;
      def.policy = c.base.policy ?? 'accept';
      if (c.base.policy !== undefined && c.base.policy !== 'accept' && c.base.policy !== 'drop')
        throw new KernelInputError(`chains[${i}].base.policy`, 'must be accept or drop');
      if (c.base.dev !== undefined) {
        if (!/^[A-Za-z0-9_-]{1,15}$/.test(c.base.dev)) throw new KernelInputError(`chains[${i}].base.dev`, 'must be an interface name');
        def.dev = c.base.dev;
      }
    }
    return { name: c.name, ...(c.base ? { base: c.base } : {}), def };
  });
  const rules: NftCommand[] = [];
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
      rules.push({ add: { rule } });
    }
  }
  const parts: TableParts = { family, table, sets, chains, rules };
  if (spec.version !== undefined) {
    const comment = checkComment('version', VERSION_PREFIX + spec.version);
    parts.versionRule = { add: { rule: { family, table, chain: NFT_VERSION_CHAIN, comment, expr: [{ return: null }] } } };
  }
  return parts;
}

const METAINFO = { metainfo: { json_schema_version: 1 } } as unknown as NftCommand;

/** `add set` of a set that does not exist yet, with its elements. */
const addSetCommand = (s: TableParts['sets'][number]): NftCommand => ({
  add: { set: s.elements.length ? { ...s.def, elem: s.elements } : s.def },
});

/**
 * The JSON document that replaces table `spec` whole, as one transaction: add table, delete table, add table, then
 * sets, chains and rules. Exposed so callers can inspect or log it. replaceNftTable runs it only for a table that
 * does not exist yet, a change an update in place cannot express (nftUpdateTableDocument returns null), or an update
 * the kernel refused: a whole-table replace is atomic, but packets matched against the table's sets around its
 * commit can miss (see nftUpdateTableDocument).
 *
 * With `create`, the document makes a table that must not exist yet (`create table`: the whole transaction fails
 * with EEXIST when it does, so it can never append to a live table) instead of add + delete + add. Why it exists:
 * a commit that deleted anything leaves destroy work that the kernel flushes — one RCU grace period, 12–16 ms
 * measured on the 2-core VM — when the nftables socket is closed, and libnftables use is serialised, so the next
 * nft call of ANY namespace waits for it. A cold start creates every table once: nothing to delete, nothing to wait.
 */
export function nftReplaceTableDocument(spec: NftTableSpec, opts: { create?: boolean } = {}): { nftables: NftCommand[] } {
  const p = tableParts(spec);
  const t = { family: p.family, name: p.table };
  const cmds: NftCommand[] = [
    METAINFO,
    // add + delete + add: the delete needs the table to exist; all three are one transaction.
    ...(opts.create ? [{ create: { table: t } }] : [{ add: { table: t } }, { delete: { table: t } }, { add: { table: t } }]),
  ];
  for (const s of p.sets) cmds.push(addSetCommand(s));
  // All chains before any rule: a rule may jump to a chain defined later.
  for (const c of p.chains) cmds.push({ add: { chain: c.def } });
  cmds.push(...p.rules);
  if (p.versionRule) cmds.push({ add: { chain: { family: p.family, table: p.table, name: NFT_VERSION_CHAIN } } }, p.versionRule);
  return { nftables: cmds };
}

/** JSON with object keys sorted: equal values give equal text whatever order their keys were written in. */
function canonicalJson(v: NftJson): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k]!)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const sameMembers = (a: readonly NftJson[], b: readonly NftJson[]) =>
  a.length === b.length && JSON.stringify(a.map(canonicalJson).sort()) === JSON.stringify(b.map(canonicalJson).sort());

/** Same key type and flags, what an existing set cannot change (nft lists one type as a string, a concatenation as a list). */
const sameSetKind = (had: NftTableState['sets'][number], s: TableParts['sets'][number]) => {
  const type = (t: NftJson) => canonicalJson(Array.isArray(t) ? t : [t]);
  const flags = (f: readonly string[]) => canonicalJson([...f].sort());
  return type(had.type) === type(s.def.type!) && flags(had.flags) === flags(s.flags);
};

const sameHook = (a: NftBaseChain | undefined, b: NftBaseChain | undefined) =>
  a === undefined || b === undefined
    ? a === b
    : a.type === b.type && a.hook === b.hook && a.prio === b.prio && (a.dev ?? '') === (b.dev ?? '');

/**
 * The JSON document that turns table `current` (as the kernel lists it) into `spec` in place, as ONE transaction;
 * null when that cannot be done in place (then replace the table whole): a set whose type or flags change or a
 * constant set whose elements change, a chain that changes between base and regular or changes its hook, type,
 * priority or device.
 *
 * Every chain is flushed and gets its rules again (the old rules stop and the new ones start at the same commit);
 * a base chain's `add chain` also updates its policy. A set keeps its identity and its elements: left alone when
 * the kernel lists the same elements (nft lists them merged and normalised, so an element written another way only
 * costs a needless refill), else flushed and refilled in the same transaction. Chains and sets the spec no longer
 * has are deleted after every flush, when no rule refers to them any more.
 *
 * Why not replace the whole table: with a UDP flood through a policy-drop chain matching `ip saddr @allowed` (an
 * interval set that holds the client in every version), back-to-back whole-table replaces dropped packets in every
 * run on kernel 6.18: 400–600 of ~480,000 per 3 s with ~3,500 bare replaces, 173 and 174 of ~460,000 in the test
 * of test/privileged/kernel-nft.test.ts (~1,570 replaces, each with its read), and 1 in ~11,000 replaces even with
 * the rule matching the address literally. This update in place — set left alone, one element swapped, or set
 * flushed and refilled — dropped none (~11,000 replaces each; the test, 6 runs).
 */
export function nftUpdateTableDocument(spec: NftTableSpec, current: NftTableState): { nftables: NftCommand[] } | null {
  const p = tableParts(spec);
  if (current.family !== p.family || current.name !== p.table)
    throw new KernelInputError('name', `current is table ${current.family} ${current.name}, not ${p.family} ${p.table}`);
  const at = { family: p.family, table: p.table };
  const cmds: NftCommand[] = [METAINFO, { add: { table: { family: p.family, name: p.table } } }];
  const deletes: NftCommand[] = [];

  const setsHad = new Map(current.sets.map((s) => [s.name, s]));
  for (const s of p.sets) {
    const had = setsHad.get(s.name);
    if (!had) {
      cmds.push(addSetCommand(s));
      continue;
    }
    if (!sameSetKind(had, s)) return null;
    if (sameMembers(had.elements, s.elements)) continue;
    if (s.flags.includes('constant')) return null;
    cmds.push({ flush: { set: { ...at, name: s.name } } });
    if (s.elements.length) cmds.push({ add: { element: { ...at, name: s.name, elem: s.elements } } });
  }
  const wanted = new Set(p.sets.map((s) => s.name));
  for (const s of current.sets) if (!wanted.has(s.name)) deletes.push({ delete: { set: { ...at, name: s.name } } });

  const chainsHad = new Map(current.chains.map((c) => [c.name, c]));
  for (const c of p.chains) {
    const had = chainsHad.get(c.name);
    if (had && !sameHook(had.base, c.base)) return null;
    cmds.push({ add: { chain: c.def } });
    if (had) cmds.push({ flush: { chain: { ...at, name: c.name } } });
  }
  const chainsWanted = new Set(p.chains.map((c) => c.name));
  for (const c of current.chains) {
    if (chainsWanted.has(c.name)) continue;
    cmds.push({ flush: { chain: { ...at, name: c.name } } });
    deletes.push({ delete: { chain: { ...at, name: c.name } } });
  }
  // The version chain is left out of `current` (parseNftTable): add (no-op when present) and flush it always.
  cmds.push({ add: { chain: { ...at, name: NFT_VERSION_CHAIN } } }, { flush: { chain: { ...at, name: NFT_VERSION_CHAIN } } });
  if (!p.versionRule) deletes.push({ delete: { chain: { ...at, name: NFT_VERSION_CHAIN } } });
  cmds.push(...deletes, ...p.rules);
  if (p.versionRule) cmds.push(p.versionRule);
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

/**
 * Twin: `nft -j list table …` then `nft -j -f FILE`: makes table `spec` what the kernel has, as one transaction —
 * updated in place when it exists (nftUpdateTableDocument: its sets keep matching throughout), else (absent, or a
 * change an update cannot express) replaced whole. An update the kernel refuses (the table changed between the read
 * and the write) is retried as a whole replace, which needs nothing of what was read; refused input is not retried.
 */
export async function replaceNftTable(ns: NetnsRef, spec: NftTableSpec): Promise<void> {
  const current = await readNftTable(ns, spec.family, spec.name);
  const update = current && nftUpdateTableDocument(spec, current);
  if (update) {
    try {
      return await applyNftDocument(ns, update);
    } catch (e) {
      if (!(e instanceof KernelError)) throw e; // KernelInputError: our own validation, not the kernel's state
    }
  }
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
