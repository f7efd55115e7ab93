/**
 * Spawning a helper script of test/support as a separate Node process, whether the tests run compiled
 * (dist/test/…/*.js after `make ts`) or from source with tsx (`npx tsx --test test/…/*.ts`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** True when this file runs from TypeScript source (under tsx), false when compiled to dist/. */
const fromSource = import.meta.url.endsWith('.ts');

/**
 * Starts `test/support/<name>` (give the name without extension) with `args`; stdout is piped, stderr is
 * inherited so a crashing helper explains itself in the test output.
 */
export function spawnSupportScript(name: string, args: string[]): ChildProcess {
  const file = fileURLToPath(new URL(`./${name}.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  const nodeArgs = fromSource ? ['--import', 'tsx', file, ...args] : [file, ...args];
  return spawn(process.execPath, nodeArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Resolves with the child's stdout once it exits with status 0; rejects otherwise. */
export function finished(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve(out) : reject(new Error(`helper exited with ${signal ?? code}; stdout: ${out}`)),
    );
  });
}
