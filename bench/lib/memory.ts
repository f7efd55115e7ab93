/**
 * Memory figures for benchmarks.
 *
 * Kernel memory: two readings, because neither is exact on its own.
 *  - system-wide: /proc/meminfo Slab + Percpu + KernelStack (what network namespaces, devices, routes and nft
 *    objects are made of: slab objects and per-CPU statistics). Includes whatever else the machine does meanwhile.
 *  - this process's memory cgroup: memory.kmem.usage_in_bytes (cgroup v1) or memory.stat `kernel` (v2) — only
 *    allocations the kernel accounts to a cgroup (__GFP_ACCOUNT: most netns, netdev and nft objects), but only ours.
 * Deltas of both around "N customers created", divided by N, bracket the per-customer cost.
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

export interface KernelMemory {
  /** Slab + Percpu + KernelStack from /proc/meminfo, bytes. */
  meminfoBytes: number;
  /** Kernel memory charged to this process's memory cgroup, bytes (undefined when not readable). */
  cgroupKernelBytes?: number;
}

function meminfoKiB(text: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

function cgroupKernelBytes(): number | undefined {
  try {
    const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
    const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
    if (v1) {
      const path = v1.slice(v1.lastIndexOf(':') + 1);
      return Number(readFileSync(`/sys/fs/cgroup/memory${path}/memory.kmem.usage_in_bytes`, 'utf8').trim());
    }
    const v2 = lines.find((l) => l.startsWith('0::'));
    if (v2) {
      const stat = readFileSync(`/sys/fs/cgroup${v2.slice(3)}/memory.stat`, 'utf8');
      const m = /^kernel (\d+)$/m.exec(stat);
      return m ? Number(m[1]) : undefined;
    }
  } catch {
    // No readable memory controller: report the system-wide figure only.
  }
  return undefined;
}

export function kernelMemory(): KernelMemory {
  const text = readFileSync('/proc/meminfo', 'utf8');
  const kib = meminfoKiB(text, 'Slab') + meminfoKiB(text, 'Percpu') + meminfoKiB(text, 'KernelStack');
  const cg = cgroupKernelBytes();
  return { meminfoBytes: kib * 1024, ...(cg !== undefined ? { cgroupKernelBytes: cg } : {}) };
}

let gcFn: (() => void) | undefined;

/** A full garbage collection (node started without --expose-gc: turn it on and fetch gc from a fresh context). */
export function collectGarbage(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
}

export interface ProcessMemory {
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
}

/** This process's memory after a full GC (so heap figures are live objects, not garbage). */
export function processMemory(): ProcessMemory {
  collectGarbage();
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external };
}

export const MiB = 1024 * 1024;
export const KiB = 1024;
