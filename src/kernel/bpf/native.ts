/**
 * The libbpf addon (build/Release/opentransit_bpf.node, sources in ./native) and the types of what it exports.
 * Loaded lazily on first use, so that importing the BPF modules (e.g. for the ABI codecs) needs no build.
 * Only src/kernel/bpf/index.ts should call these; everything else uses its typed API.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { addonPath } from './paths.js';

/** What a failed native call throws: an Error with the errno name and libbpf's messages (verifier log). */
export interface NativeError extends Error {
  code: string;
  errno: number;
  log?: string;
}

export interface NativeProgInfo {
  id: number;
  type: number;
  name: string;
  tag: string;
}
export interface NativeMapInfo {
  id: number;
  type: number;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface NativeRingBuffer {
  consume(): number;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface NativeNetlinkWatch {
  close(): void;
  ref(): void;
  unref(): void;
  portId(): number;
}

export interface NativeBpf {
  loadObject(
    path: string,
    pinRoot: string | null,
  ): { programs: (NativeProgInfo & { section: string; fd: number })[]; maps: (NativeMapInfo & { fd: number })[]; log: string };
  objPin(fd: number, path: string): void;
  objGet(path: string): number;
  closeFd(fd: number): void;
  progInfo(fd: number): NativeProgInfo;
  mapInfo(fd: number): NativeMapInfo;
  progFdById(id: number): number;
  progTestRun(
    fd: number,
    data: Buffer,
    dataOutSize: number,
    repeat: number,
    ctxIn: Buffer | null,
    ctxOutSize: number,
  ): { retval: number; duration: number; data: Buffer; ctx?: Buffer };
  numPossibleCpus(): number;
  isBpffs(path: string): boolean;
  mountBpffs(path: string): void;

  mapLookup(fd: number, key: Buffer, valueSize: number): Buffer | null;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapNextKey(fd: number, key: Buffer | null, keySize: number): Buffer | null;
  mapDump(fd: number, keySize: number, valueSize: number, maxEntries: number): { count: number; keys: Buffer; values: Buffer };
  mapUpdateMany(fd: number, keys: Buffer, values: Buffer, keySize: number, valueSize: number, flags: number): number;

  ifIndex(netns: string | null, name: string): number;
  netnsCookie(netns: string | null): bigint;
  /** Calls fn synchronously inside netns (null: the current one) and switches back, also when fn throws. */
  withNetns<T>(netns: string | null, fn: () => T): T;
  xdpAttach(netns: string | null, ifindex: number, progFd: number, flags: number, oldProgFd: number): void;
  xdpQuery(
    netns: string | null,
    ifindex: number,
  ): { progId: number; drvProgId: number; skbProgId: number; hwProgId: number; attachMode: number };
  tcAttach(
    netns: string | null,
    ifindex: number,
    point: number,
    progFd: number,
    handle: number,
    priority: number,
    replace: boolean,
  ): { handle: number; priority: number; progId: number };
  tcDetach(netns: string | null, ifindex: number, point: number, handle: number, priority: number): boolean;
  tcQuery(netns: string | null, ifindex: number, point: number, handle: number, priority: number): number;
  tcHookDestroy(netns: string | null, ifindex: number): boolean;

  /** `ip netns add` in-process (native/nsfs.cc, off the JS thread): true when created, false when a live namespace of that name exists. */
  netnsAdd(dir: string, name: string): Promise<boolean>;
  /** `ip netns del` in-process: whether the name existed. */
  netnsDelete(dir: string, name: string): boolean;
  /** `nft -j -f` in-process (native/nft.cc, libnftables, off the JS thread) inside netns: rc 0 = committed. */
  nftRun(netns: string | null, text: string): Promise<{ rc: number; stdout: string; stderr: string }>;
  /** The name of the threads nftRun commits on (NFT_MSG_NEWGEN's NFTA_GEN_PROC_NAME of our own commits). */
  nftThreadName: string;

  RingBuffer: new (mapFd: number, onRecords: (records: Buffer[]) => void) => NativeRingBuffer;
  /** native/nlwatch.cc: a netlink socket in `netns` joined to `groups`, hearing every namespace with an id there. */
  NetlinkWatch: new (
    netns: string | null,
    protocol: number,
    groups: readonly number[],
    rcvbuf: number,
    onBatch: (datagrams: Buffer[], nsids: number[], overflowed: boolean) => void,
  ) => NativeNetlinkWatch;
}

let addon: NativeBpf | undefined;

export function native(): NativeBpf {
  if (addon) return addon;
  const path = addonPath();
  if (!existsSync(path)) throw new Error(`the libbpf addon is not built (${path}): run \`make addon\``);
  addon = createRequire(import.meta.url)(path) as NativeBpf;
  return addon;
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).code === 'string' && typeof (e as Partial<NativeError>).errno === 'number';
}
