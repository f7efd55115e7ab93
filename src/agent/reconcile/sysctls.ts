/** Sysctls: write only the keys whose current value differs (one in-process read, one write when needed; no spawn). */
import { readSysctls, setSysctls } from '../../kernel/netns.js';

export interface SysctlOptions {
  dryRun: boolean;
  /** False when the namespace does not exist yet: every key is a change, nothing is read. */
  exists: boolean;
  /**
   * A failed read counts as "nothing known" (every key is written, and a write failure names the key) rather than
   * failing the step.
   */
  tolerateReadErrors: boolean;
}

export async function reconcileSysctls(
  ns: string,
  wanted: Record<string, string | number>,
  changes: string[],
  where: string,
  o: SysctlOptions,
): Promise<void> {
  const read = () => readSysctls(ns, Object.keys(wanted));
  const current = !o.exists ? {} : o.tolerateReadErrors ? await read().catch(() => ({}) as Record<string, string>) : await read();
  const diff: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(wanted)) if (current[k] !== String(v)) diff[k] = v;
  if (Object.keys(diff).length === 0) return;
  changes.push(`${where}: sysctl ${Object.entries(diff).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (!o.dryRun) await setSysctls(ns, diff);
}
