/**
 * What abi.generated.ts builds on: codecs that turn the C structs of bpf/opentransit_abi.h into Buffers and back.
 * The generated code calls these writers with the struct path and field name, so a bad value fails with an error
 * naming the field (`ot_rule_set.rules[2].dport_min: must be an integer in 0..65535, got 70000`).
 *
 * Host order is little-endian on every platform the data plane is built for (x86_64, arm64); the assertion
 * below turns a big-endian host into a clear failure instead of silently wrong map contents.
 */
import { endianness } from 'node:os';
import { KernelInputError } from '../exec.js';

if (endianness() !== 'LE') throw new Error('opentransit BPF ABI: only little-endian hosts are supported');

/** Layout of one field as the C compiler lays it out (checked against clang by test/unit/bpf-abi.test.ts). */
export interface FieldLayout {
  readonly name: string;
  readonly offset: number;
  /** Bytes of the whole field (all elements of an array). */
  readonly size: number;
  /** 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'be32' or the C struct tag (`ot_rule`). */
  readonly type: string;
  /** Element count of an array field. */
  readonly count?: number;
}

/** Encodes T into its C layout and back. */
export interface Codec<T> {
  /** The C type: `__u32`, `struct ot_lpm_key`… */
  readonly cType: string;
  readonly size: number;
  readonly align: number;
  /** Writes v at buf[off…off+size) (a fresh zeroed Buffer when none is given); padding is written as zeros. */
  encode(v: T, buf?: Buffer, off?: number, path?: string): Buffer;
  decode(buf: Buffer, off?: number): T;
}

export interface StructCodec<T> extends Codec<T> {
  readonly fields: readonly FieldLayout[];
}

function fail(path: string, field: string, reason: string, v: unknown): never {
  const shown = typeof v === 'bigint' ? `${v}n` : JSON.stringify(v) ?? String(v);
  throw new KernelInputError(field === '' ? path : `${path}.${field}`, `${reason}, got ${shown}`);
}

function int(v: unknown, max: number, path: string, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(path, field, `must be an integer in 0..${max}`, v);
  return v;
}

export function wU8(buf: Buffer, off: number, v: unknown, path: string, field: string): void {
  buf[off] = int(v, 0xff, path, field);
}
export function wU16(buf: Buffer, off: number, v: unknown, path: string, field: string): void {
  buf.writeUInt16LE(int(v, 0xffff, path, field), off);
}
export function wU32(buf: Buffer, off: number, v: unknown, path: string, field: string): void {
  buf.writeUInt32LE(int(v, 0xffffffff, path, field), off);
}
export function wBe16(buf: Buffer, off: number, v: unknown, path: string, field: string): void {
  buf.writeUInt16BE(int(v, 0xffff, path, field), off);
}
export function wBe32(buf: Buffer, off: number, v: unknown, path: string, field: string): void {
  buf.writeUInt32BE(int(v, 0xffffffff, path, field), off);
}
export function wU64(buf: Buffer, off: number, v: unknown, path: string, field: string): void {
  if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) fail(path, field, 'must be a bigint in 0..2^64-1', v);
  buf.writeBigUInt64LE(v, off);
}

/** A byte array field (addresses, MACs, packet data): exactly `len` bytes, so a short address never passes. */
export function wBytes(buf: Buffer, off: number, v: unknown, len: number, path: string, field: string): void {
  if (!(v instanceof Uint8Array) || v.length !== len) {
    const shown = v instanceof Uint8Array ? `${v.length} bytes` : v;
    fail(path, field, `must be ${len} bytes (Uint8Array)`, shown);
  }
  buf.set(v, off);
}

/** An array of structs or numbers: up to `count` elements; missing ones are written as zeros. */
export function checkArray(v: unknown, count: number, path: string, field: string): readonly unknown[] {
  if (!Array.isArray(v) || v.length > count) fail(path, field, `must be an array of at most ${count} elements`, Array.isArray(v) ? `${v.length} elements` : v);
  return v;
}

export function checkObject(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, '', 'must be an object', v);
  return v as Record<string, unknown>;
}

export function rBytes(buf: Buffer, off: number, len: number): Buffer {
  return Buffer.from(buf.subarray(off, off + len));
}

function scalar<T>(cType: string, size: number, write: (b: Buffer, o: number, v: unknown, p: string, f: string) => void, read: (b: Buffer, o: number) => T): Codec<T> {
  return {
    cType,
    size,
    align: size,
    encode(v: T, buf: Buffer = Buffer.alloc(size), off = 0, path = cType): Buffer {
      write(buf, off, v, path, '');
      return buf;
    },
    decode: (buf: Buffer, off = 0) => read(buf, off),
  };
}

export const U8: Codec<number> = scalar('__u8', 1, wU8, (b, o) => b.readUInt8(o));
export const U16: Codec<number> = scalar('__u16', 2, wU16, (b, o) => b.readUInt16LE(o));
export const U32: Codec<number> = scalar('__u32', 4, wU32, (b, o) => b.readUInt32LE(o));
export const U64: Codec<bigint> = scalar('__u64', 8, wU64, (b, o) => b.readBigUInt64LE(o));
/** Network-order 16-bit value, held as a number in host terms (a port, an EtherType). */
export const Be16: Codec<number> = scalar('__be16', 2, wBe16, (b, o) => b.readUInt16BE(o));
/** Network-order 32-bit value, held as a number in host terms (an IPv4 address: 192.0.2.1 = 0xc0000201). */
export const Be32: Codec<number> = scalar('__be32', 4, wBe32, (b, o) => b.readUInt32BE(o));
