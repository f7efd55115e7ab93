/**
 * Where the build puts the data plane's artefacts, found from this module's own location so that the same code
 * works from src/ (tsx) and from dist/src/ (compiled): walk up to the repository's package.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | undefined;

/** The repository (or installed package) root: the nearest directory above this module with our package.json. */
export function repoRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'opentransit') {
      cachedRoot = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`opentransit: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The C ABI header (source of abi.generated.ts). */
export const abiHeaderPath = (): string => join(repoRoot(), 'bpf', 'opentransit_abi.h');
/** The committed generated TS (always the source file, also when running from dist/). */
export const abiGeneratedPath = (): string => join(repoRoot(), 'src', 'kernel', 'bpf', 'abi.generated.ts');
/** A compiled BPF object: `bpfObjectPath('xdp_edge')` → build/bpf/xdp_edge.o (`make bpf`). */
export const bpfObjectPath = (name: string): string => join(repoRoot(), 'build', 'bpf', `${name}.o`);
/** The libbpf N-API addon (`make addon`). */
export const addonPath = (): string => join(repoRoot(), 'build', 'Release', 'opentransit_bpf.node');
