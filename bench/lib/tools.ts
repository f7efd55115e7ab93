/**
 * The bench's two small C helpers (bench/c/), compiled on first use into build/bench/ (never committed; rebuilt
 * when the source is newer): the bare XDP_DROP program (baseline of xdp-edge) and xdp_flood, a traffic
 * generator using BPF_PROG_RUN's live-frames mode (no pktgen, no extra package: clang and libbpf-dev are
 * already build dependencies).
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/bpf/paths.js';
import { run } from '../../src/kernel/exec.js';

function stale(out: string, src: string): boolean {
  return !existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs;
}

export interface BenchTools {
  /** BPF object with program ot_bench_xdp_drop. */
  xdpDropObject: string;
  /** xdp_flood [--rewrite] [--batch N] IFINDEX COUNT HEXFRAME → {"sent","ns","cpu_ns"} */
  xdpFlood: string;
}

export async function benchTools(): Promise<BenchTools> {
  const root = repoRoot();
  const out = join(root, 'build', 'bench');
  mkdirSync(out, { recursive: true });
  const dropSrc = join(root, 'bench', 'c', 'xdp_drop.c');
  const floodSrc = join(root, 'bench', 'c', 'xdp_flood.c');
  const xdpDropObject = join(out, 'xdp_drop.o');
  const xdpFlood = join(out, 'xdp_flood');
  if (stale(xdpDropObject, dropSrc)) {
    // Debian keeps asm/types.h under the multiarch directory, which -target bpf does not search by itself.
    await run(['clang', '-g', '-O2', '-Wall', '-Werror', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', dropSrc, '-o', xdpDropObject]);
  }
  if (stale(xdpFlood, floodSrc)) await run(['clang', '-O2', '-Wall', '-Werror', '-o', xdpFlood, floodSrc, '-lbpf']);
  return { xdpDropObject, xdpFlood };
}
