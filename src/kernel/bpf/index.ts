/**
 * libbpf from TypeScript: load object files, pin and open pinned programs and maps, map elements, XDP and tc
 * attachment inside a given network namespace, BPF_PROG_RUN, ring buffers. A thin typed layer over the addon in
 * ./native; the data-plane specifics (which maps, which pins) live in ./dataplane.ts.
 *
 * Namespaces: every call that touches a device takes `netns` — a name under /run/netns (what `ip netns` manages)
 * or an absolute path to a netns file (/proc/PID/ns/net); omitted = the agent's own. The switch happens on the
 * calling thread only for the duration of the call (see native/netns.cc).
 *
 * File descriptors: each BpfProgram/BpfMap owns one fd; close() releases it (a finalizer does it for forgotten
 * objects). Pins outlive fds — removing a pin is unpin().
 */
import { mkdirSync, rmSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { KernelInputError } from '../exec.js';
import { checkNetnsName } from '../validate.js';
import type { MapSpec } from './abi.generated.js';
import type { Codec } from './abi-runtime.js';
import { isNativeError, native, type NativeMapInfo, type NativeProgInfo, type NativeRingBuffer, type NativeNetlinkWatch } from './native.js';

export { isNativeError, type NativeError } from './native.js';

/** Where bpffs is mounted on every Linux system that has it. */
export const BPFFS = '/sys/fs/bpf';

const closer = new FinalizationRegistry<number>((fd) => {
  try {
    native().closeFd(fd);
  } catch {
    // Already closed: nothing to release.
  }
});

/** A netns argument as the addon wants it: null (ours) or a path. */
function netnsPath(netns: string | undefined): string | null {
  if (netns === undefined) return null;
  if (isAbsolute(netns)) {
    if (netns.includes('\0')) throw new KernelInputError('netns', 'must not contain NUL');
    return netns;
  }
  return `/run/netns/${checkNetnsName('netns', netns)}`;
}

function checkIfindex(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0x7fffffff)
    throw new KernelInputError('ifindex', `must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Mounts bpffs at `mountPoint` unless it is one already (`mount -t bpf bpf /sys/fs/bpf`). Returns whether it mounted. */
export function ensureBpffs(mountPoint: string = BPFFS): boolean {
  const n = native();
  if (n.isBpffs(mountPoint)) return false;
  mkdirSync(mountPoint, { recursive: true });
  n.mountBpffs(mountPoint);
  return true;
}

/** Possible CPUs: the number of values a per-CPU map holds per key. */
export function numPossibleCpus(): number {
  return native().numPossibleCpus();
}

/** The per-CPU stride of a per-CPU map's values: the kernel rounds each CPU's value up to 8 bytes. */
export function perCpuStride(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

/** Removes a pin (program, map) or a whole pin directory. Missing paths are fine (idempotent). `rm PATH` */
export function unpin(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

abstract class FdObject {
  #fd: number;
  constructor(fd: number) {
    this.#fd = fd;
    closer.register(this, fd, this);
  }
  /** The file descriptor; throws after close(). */
  get fd(): number {
    if (this.#fd < 0) throw new Error(`${this.describe()} is closed`);
    return this.#fd;
  }
  get closed(): boolean {
    return this.#fd < 0;
  }
  /** Pins the object at `path` (the directory must exist on bpffs). `bpftool … pin PATH` */
  pin(path: string): void {
    native().objPin(this.fd, path);
  }
  close(): void {
    if (this.#fd < 0) return;
    closer.unregister(this);
    const fd = this.#fd;
    this.#fd = -1;
    native().closeFd(fd);
  }
  protected abstract describe(): string;
}

export interface TestRunOptions {
  /** Run the program this many times (the result is the last run's; duration is the average). */
  repeat?: number;
  /** Room for the output packet (default: input length + 256, enough for an encapsulation). */
  dataOutSize?: number;
  /** Context in (struct xdp_md / struct __sk_buff), e.g. to set ingress_ifindex. */
  ctx?: Buffer;
  ctxOutSize?: number;
}

export interface TestRunResult {
  /** The program's return value (XDP_PASS 2, XDP_DROP 1, XDP_REDIRECT 4, TC_ACT_OK 0, TC_ACT_SHOT 2…). */
  retval: number;
  /** The packet as the program left it. */
  data: Buffer;
  /** Average run time in ns. */
  duration: number;
  ctx?: Buffer;
}

export class BpfProgram extends FdObject {
  readonly name: string;
  readonly id: number;
  readonly type: number;
  readonly tag: string;

  constructor(fd: number, info: NativeProgInfo & { name?: string }) {
    super(fd);
    this.name = info.name;
    this.id = info.id;
    this.type = info.type;
    this.tag = info.tag;
  }

  /** Opens a pinned program. */
  static fromPin(path: string): BpfProgram {
    const fd = native().objGet(path);
    return BpfProgram.fromFd(fd);
  }

  /** Opens a loaded program by id (what XDP/tc queries return). */
  static fromId(id: number): BpfProgram {
    return BpfProgram.fromFd(native().progFdById(id));
  }

  private static fromFd(fd: number): BpfProgram {
    try {
      return new BpfProgram(fd, native().progInfo(fd));
    } catch (e) {
      native().closeFd(fd);
      throw e;
    }
  }

  /** BPF_PROG_RUN: runs the program on a copy of `data`, without any device or side effect but its maps. */
  testRun(data: Buffer, opts: TestRunOptions = {}): TestRunResult {
    const r = native().progTestRun(
      this.fd,
      data,
      opts.dataOutSize ?? data.length + 256,
      opts.repeat ?? 1,
      opts.ctx ?? null,
      opts.ctxOutSize ?? 0,
    );
    return r;
  }

  protected describe(): string {
    return `program ${this.name}`;
  }
}

export type UpdateFlag = 'any' | 'noexist' | 'exist';
const UPDATE_FLAGS: Record<UpdateFlag, number> = { any: 0, noexist: 1, exist: 2 };

const PERCPU_TYPES = new Set([5 /* PERCPU_HASH */, 6 /* PERCPU_ARRAY */, 10 /* LRU_PERCPU_HASH */, 21 /* PERCPU_CGROUP_STORAGE */]);

export class BpfMap extends FdObject {
  readonly name: string;
  readonly id: number;
  readonly type: number;
  readonly keySize: number;
  /** The kernel's value size (one CPU's value for per-CPU maps). */
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly perCpu: boolean;
  /** Bytes of a value as lookup/update exchange it: valueSize, or every CPU's (8-byte aligned) for per-CPU maps. */
  readonly valueBytes: number;

  constructor(fd: number, info: NativeMapInfo) {
    super(fd);
    this.name = info.name;
    this.id = info.id;
    this.type = info.type;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.flags;
    this.perCpu = PERCPU_TYPES.has(info.type);
    this.valueBytes = this.perCpu ? perCpuStride(info.valueSize) * numPossibleCpus() : info.valueSize;
  }

  /** Opens a pinned map. */
  static fromPin(path: string): BpfMap {
    const fd = native().objGet(path);
    try {
      return new BpfMap(fd, native().mapInfo(fd));
    } catch (e) {
      native().closeFd(fd);
      throw e;
    }
  }

  private checkKey(key: Buffer): void {
    if (!Buffer.isBuffer(key) || key.length !== this.keySize)
      throw new KernelInputError(`${this.name} key`, `must be a Buffer of ${this.keySize} bytes, got ${Buffer.isBuffer(key) ? key.length : typeof key}`);
  }

  lookup(key: Buffer): Buffer | undefined {
    this.checkKey(key);
    return native().mapLookup(this.fd, key, this.valueBytes) ?? undefined;
  }

  update(key: Buffer, value: Buffer, flag: UpdateFlag = 'any'): void {
    this.checkKey(key);
    if (!Buffer.isBuffer(value) || value.length !== this.valueBytes)
      throw new KernelInputError(`${this.name} value`, `must be a Buffer of ${this.valueBytes} bytes, got ${Buffer.isBuffer(value) ? value.length : typeof value}`);
    native().mapUpdate(this.fd, key, value, UPDATE_FLAGS[flag]);
  }

  /** Whether the key existed. */
  delete(key: Buffer): boolean {
    this.checkKey(key);
    return native().mapDelete(this.fd, key);
  }

  /** Keys in the kernel's iteration order (get_next_key). */
  *keys(): Generator<Buffer> {
    let key: Buffer | null = null;
    for (;;) {
      key = native().mapNextKey(this.fd, key, this.keySize);
      if (!key) return;
      yield key;
    }
  }

  /** Every entry, in as few syscalls as the map type allows (batch lookup; key iteration for LPM tries). */
  dump(): [Buffer, Buffer][] {
    const r = native().mapDump(this.fd, this.keySize, this.valueBytes, this.maxEntries);
    const out: [Buffer, Buffer][] = [];
    for (let i = 0; i < r.count; i++)
      out.push([r.keys.subarray(i * this.keySize, (i + 1) * this.keySize), r.values.subarray(i * this.valueBytes, (i + 1) * this.valueBytes)]);
    return out;
  }

  /** Writes many entries in one native call; stops at the first failure (the error names the element). */
  updateMany(entries: readonly (readonly [Buffer, Buffer])[], flag: UpdateFlag = 'any'): number {
    if (entries.length === 0) return 0;
    for (const [k, v] of entries) {
      this.checkKey(k);
      if (v.length !== this.valueBytes) throw new KernelInputError(`${this.name} value`, `must be ${this.valueBytes} bytes, got ${v.length}`);
    }
    const keys = Buffer.concat(entries.map((e) => e[0]));
    const values = Buffer.concat(entries.map((e) => e[1]));
    return native().mapUpdateMany(this.fd, keys, values, this.keySize, this.valueBytes, UPDATE_FLAGS[flag]);
  }

  protected describe(): string {
    return `map ${this.name}`;
  }
}

/**
 * A map seen through the ABI's codecs: keys and values are objects, checked against the generated MapSpec (key
 * and value sizes, type) when it is wrapped, so a map of another ABI version fails loudly, not silently.
 */
export class TypedMap<K, V> {
  constructor(
    readonly map: BpfMap,
    readonly spec: MapSpec<K, V>,
  ) {
    const want = { type: spec.type, keySize: spec.key.size, valueSize: spec.value.size, maxEntries: spec.maxEntries };
    const got = { type: map.type, keySize: map.keySize, valueSize: map.valueSize, maxEntries: map.maxEntries };
    if (JSON.stringify(want) !== JSON.stringify(got))
      throw new Error(`map ${map.name} does not match the ABI's ${spec.name}: expected ${JSON.stringify(want)}, found ${JSON.stringify(got)}`);
  }

  private key(k: K): Buffer {
    return this.spec.key.encode(k, undefined, 0, `${this.spec.name} key`);
  }

  private value(v: V): Buffer {
    if (!this.map.perCpu) return this.spec.value.encode(v, undefined, 0, `${this.spec.name} value`);
    // The same value for every CPU (e.g. zeroing a per-CPU slot).
    const stride = perCpuStride(this.spec.value.size);
    const buf = Buffer.alloc(this.map.valueBytes);
    for (let off = 0; off < buf.length; off += stride) this.spec.value.encode(v, buf, off, `${this.spec.name} value`);
    return buf;
  }

  /** The value (for per-CPU maps: CPU 0's; use getPerCpu). */
  get(k: K): V | undefined {
    const b = this.map.lookup(this.key(k));
    return b ? this.spec.value.decode(b) : undefined;
  }

  /** Every CPU's value of a per-CPU map. */
  getPerCpu(k: K): V[] | undefined {
    const b = this.map.lookup(this.key(k));
    return b ? decodePerCpu(this.spec.value, b) : undefined;
  }

  /** Writes v (for per-CPU maps: on every CPU). */
  set(k: K, v: V, flag: UpdateFlag = 'any'): void {
    this.map.update(this.key(k), this.value(v), flag);
  }

  setMany(entries: readonly (readonly [K, V])[], flag: UpdateFlag = 'any'): number {
    return this.map.updateMany(
      entries.map(([k, v]) => [this.key(k), this.value(v)] as const),
      flag,
    );
  }

  delete(k: K): boolean {
    return this.map.delete(this.key(k));
  }

  entries(): [K, V][] {
    return this.map.dump().map(([k, v]) => [this.spec.key.decode(k), this.spec.value.decode(v)]);
  }

  /** Every entry with every CPU's value (per-CPU maps). */
  entriesPerCpu(): [K, V[]][] {
    return this.map.dump().map(([k, v]) => [this.spec.key.decode(k), decodePerCpu(this.spec.value, v)]);
  }
}

function decodePerCpu<V>(codec: Codec<V>, b: Buffer): V[] {
  const stride = perCpuStride(codec.size);
  const out: V[] = [];
  for (let off = 0; off + codec.size <= b.length; off += stride) out.push(codec.decode(b, off));
  return out;
}

export interface LoadedObject {
  /** By function name (e.g. ot_xdp_edge). */
  programs: Map<string, BpfProgram>;
  /** By map name; maps pinned by name are shared with every other object loaded with the same mapPinDir. */
  maps: Map<string, BpfMap>;
  /** What libbpf said while loading (warnings). */
  log: string;
  /** Closes every fd (pins stay). */
  close(): void;
}

/**
 * Opens and loads an object file (`bpftool prog loadall PATH … pinmaps DIR`). With mapPinDir, maps declared
 * LIBBPF_PIN_BY_NAME are reused from DIR when pinned there already (same type and sizes, else the load fails), and
 * pinned there otherwise — which is how two objects share their maps.
 */
export function loadObject(path: string, opts: { mapPinDir?: string } = {}): LoadedObject {
  const r = native().loadObject(path, opts.mapPinDir ?? null);
  const programs = new Map<string, BpfProgram>();
  const maps = new Map<string, BpfMap>();
  for (const p of r.programs) programs.set(p.name, new BpfProgram(p.fd, p));
  for (const m of r.maps) maps.set(m.name, new BpfMap(m.fd, m));
  return {
    programs,
    maps,
    log: r.log,
    close() {
      for (const p of programs.values()) p.close();
      for (const m of maps.values()) m.close();
    },
  };
}

// --- network devices -------------------------------------------------------------------------------------------

/** ifindex of a device (`ip -n NETNS link show NAME`). */
export function ifIndex(name: string, netns?: string): number {
  return native().ifIndex(netnsPath(netns), name);
}

/** The netns cookie (SO_NETNS_COOKIE): what a BPF program reads as the device's or socket's netns identity. */
export function netnsCookie(netns?: string): bigint {
  return native().netnsCookie(netnsPath(netns));
}

/**
 * Runs fn synchronously with this thread inside the named netns (a name under /run/netns, or none for the current
 * one), switching back afterwards, also when fn throws. Sockets and files fn opens stay bound to that netns: this
 * is how in-process netlink, sysctl and nftables reach a customer's namespace without spawning `ip netns exec`.
 * fn must not await: code after an await would run in the original netns.
 */
export function withNetns<T>(netns: string | undefined, fn: () => T): T {
  return native().withNetns(netnsPath(netns), fn);
}

/**
 * Named network namespaces without spawning `ip netns` (native/nsfs.cc does what iproute2 does). `name` must be
 * checked by the caller (src/kernel/netns.ts). Resolves true when it created the namespace, false when one existed;
 * the work runs on libuv's thread pool, so the JS thread goes on meanwhile.
 */
export function addNamedNetns(dir: string, name: string): Promise<boolean> {
  return native().netnsAdd(dir, name);
}

/** `ip netns del` in-process (unmount + unlink): whether the name existed. */
export function deleteNamedNetns(dir: string, name: string): boolean {
  return native().netnsDelete(dir, name);
}

export interface NftRunResult {
  /** libnftables' status: 0 when the whole document ran (and was committed), nonzero when nothing was. */
  rc: number;
  /** JSON listings (`list …` commands). */
  stdout: string;
  /** nft's error messages, as the tool prints them. */
  stderr: string;
}

/**
 * Runs an nft JSON document through libnftables inside `netns` (twin: `nft -j -f FILE`). Resolves once the document
 * has run; the work happens on a thread of native/nft.cc's own (the JS thread never changes netns and goes on
 * meanwhile), which closes the nft socket afterwards. src/kernel/nft.ts builds the documents and turns failures
 * into KernelErrors.
 */
export function nftRun(netns: string | undefined, text: string): Promise<NftRunResult> {
  return native().nftRun(netnsPath(netns), text);
}

/** The name nftRun's threads bear: an nftables commit notification naming it came from this process's nftRun. */
export function nftThreadName(): string {
  return native().nftThreadName;
}

/**
 * Netlink notifications of `groups` (protocol NETLINK_ROUTE, NETLINK_NETFILTER…) in `netns` and in every namespace
 * that has an id there (NETLINK_LISTEN_ALL_NSID), delivered in batches on the event loop (native/nlwatch.cc):
 * the raw datagrams, the id of the namespace each came from (-1: `netns` itself), and whether the kernel dropped
 * some since the last batch (the receive buffer overflowed). src/kernel/netlink/watch.ts decodes them.
 */
export function openNetlinkWatch(
  netns: string | undefined,
  protocol: number,
  groups: readonly number[],
  rcvbuf: number,
  onBatch: (datagrams: Buffer[], nsids: number[], overflowed: boolean) => void,
): NativeNetlinkWatch {
  return new (native().NetlinkWatch)(netnsPath(netns), protocol, groups, rcvbuf, onBatch);
}

export type XdpMode = 'native' | 'generic';
const XDP_FLAGS_UPDATE_IF_NOEXIST = 1;
const XDP_MODE_FLAGS: Record<XdpMode, number> = { generic: 2 /* XDP_FLAGS_SKB_MODE */, native: 4 /* XDP_FLAGS_DRV_MODE */ };

export interface XdpAttachOptions {
  ifindex: number;
  netns?: string;
  prog: BpfProgram;
  mode: XdpMode;
  /**
   * What may be replaced: a program → atomically, only if exactly that program is attached (XDP_FLAGS_REPLACE;
   * EEXIST otherwise); null → only if nothing is attached (EBUSY otherwise); 'any' (default) → whatever is there.
   */
  replace?: BpfProgram | null | 'any';
}

/** `ip -n NETNS link set dev IF xdpdrv|xdpgeneric pinned PROG` */
export function attachXdp(o: XdpAttachOptions): void {
  const ifindex = checkIfindex(o.ifindex);
  let flags = XDP_MODE_FLAGS[o.mode];
  if (flags === undefined) throw new KernelInputError('mode', `must be native or generic, got ${JSON.stringify(o.mode)}`);
  let old = -1;
  if (o.replace === null) flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
  else if (o.replace instanceof BpfProgram) old = o.replace.fd;
  native().xdpAttach(netnsPath(o.netns), ifindex, o.prog.fd, flags, old);
}

/**
 * `ip -n NETNS link set dev IF xdpdrv|xdpgeneric off`. With `expected`, only if that program is the attached one
 * (EEXIST otherwise): a stale agent cannot remove its successor's program.
 */
export function detachXdp(o: { ifindex: number; netns?: string; mode: XdpMode; expected?: BpfProgram }): void {
  const ifindex = checkIfindex(o.ifindex);
  const flags = XDP_MODE_FLAGS[o.mode];
  if (flags === undefined) throw new KernelInputError('mode', `must be native or generic, got ${JSON.stringify(o.mode)}`);
  native().xdpAttach(netnsPath(o.netns), ifindex, -1, flags, o.expected ? o.expected.fd : -1);
}

export interface XdpState {
  /** The attached program's id, 0 when none. */
  progId: number;
  mode: 'none' | 'native' | 'generic' | 'offload' | 'multi';
}
const XDP_ATTACH_MODES = ['none', 'native', 'generic', 'offload', 'multi'] as const;

/** `ip -n NETNS -d link show IF` (the xdp part). */
export function queryXdp(o: { ifindex: number; netns?: string }): XdpState {
  const r = native().xdpQuery(netnsPath(o.netns), checkIfindex(o.ifindex));
  return { progId: r.progId, mode: XDP_ATTACH_MODES[r.attachMode] ?? 'multi' };
}

export type TcDirection = 'ingress' | 'egress';
const TC_POINTS: Record<TcDirection, number> = { ingress: 1, egress: 2 };

export interface TcFilterId {
  ifindex: number;
  netns?: string;
  direction: TcDirection;
  /** Filter handle (default 1). */
  handle?: number;
  /** Filter priority (default 1). */
  priority?: number;
}

function tcIds(o: TcFilterId): [string | null, number, number, number, number] {
  const point = TC_POINTS[o.direction];
  if (point === undefined) throw new KernelInputError('direction', `must be ingress or egress, got ${JSON.stringify(o.direction)}`);
  const handle = o.handle ?? 1;
  const priority = o.priority ?? 1;
  if (!Number.isInteger(handle) || handle < 1 || handle > 0xffffffff) throw new KernelInputError('handle', `must be an integer in 1..2^32-1, got ${handle}`);
  if (!Number.isInteger(priority) || priority < 1 || priority > 0xffff) throw new KernelInputError('priority', `must be an integer in 1..65535, got ${priority}`);
  return [netnsPath(o.netns), checkIfindex(o.ifindex), point, handle, priority];
}

/**
 * `tc -n NETNS qdisc add dev IF clsact; tc -n NETNS filter replace dev IF egress handle H prio P bpf da pinned PROG`.
 * Replaces the program of an existing filter with the same handle and priority (atomically) unless replace=false.
 */
export function attachTc(o: TcFilterId & { prog: BpfProgram; replace?: boolean }): { handle: number; priority: number; progId: number } {
  const [ns, ifindex, point, handle, priority] = tcIds(o);
  return native().tcAttach(ns, ifindex, point, o.prog.fd, handle, priority, o.replace ?? true);
}

/** `tc -n NETNS filter del dev IF egress handle H prio P bpf`. Returns whether a filter was there. */
export function detachTc(o: TcFilterId): boolean {
  return native().tcDetach(...tcIds(o));
}

/** The program id of a tc filter, 0 when there is none. */
export function queryTc(o: TcFilterId): number {
  return native().tcQuery(...tcIds(o));
}

/** `tc -n NETNS qdisc del dev IF clsact` (removes every filter on it). Returns whether it existed. */
export function removeClsact(o: { ifindex: number; netns?: string }): boolean {
  return native().tcHookDestroy(netnsPath(o.netns), checkIfindex(o.ifindex));
}

// --- ring buffers ----------------------------------------------------------------------------------------------

/**
 * Consumes a BPF ring buffer on the event loop (libbpf's epoll fd on a libuv poll handle): onRecords gets every
 * batch of records that arrived together. Keeps the process alive until close() unless unref()'d.
 */
export class RingBuffer {
  readonly #rb: NativeRingBuffer;
  /** Held so the map's fd (which libbpf polls) is not closed by the GC while the ring buffer is open. */
  readonly #map: BpfMap;
  #closed = false;

  /** Close the ring buffer before the map. */
  constructor(map: BpfMap, onRecords: (records: Buffer[]) => void) {
    if (map.type !== 27) throw new KernelInputError('map', `${map.name} is not a ring buffer (type ${map.type})`);
    this.#map = map;
    this.#rb = new (native().RingBuffer)(map.fd, onRecords);
  }

  get map(): BpfMap {
    return this.#map;
  }

  /** Delivers what is in the ring now, synchronously. Returns the number of records. */
  consume(): number {
    return this.#rb.consume();
  }
  ref(): void {
    this.#rb.ref();
  }
  unref(): void {
    this.#rb.unref();
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#rb.close();
  }
}

/** True when the error is a kernel "no such file" (a missing pin, device or netns). */
export function isNotFound(e: unknown): boolean {
  return isNativeError(e) && e.code === 'ENOENT';
}
