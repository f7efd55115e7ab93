/**
 * firewall-compile: a customer firewall of 10 / 100 / 1000 rules, compiled (expression → nft JSON, pure) and
 * loaded into a namespace as one atomic table replace (`nft -j -f`), vs the baseline: the same ruleset as nft
 * text, loaded with `nft -f` (same atomic replace: `table …; delete table …;` then the table).
 *
 * The text is not written by us: nft prints it (`nft list table`) from what our load put in the kernel, so the
 * two loads produce the same kernel objects (checked: same rule count after each).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { firewallTable } from '../src/agent/desired/firewall.js';
import { run } from '../src/kernel/exec.js';
import { inNetns } from '../src/kernel/netns.js';
import { readNftTable, replaceNftTable } from '../src/kernel/nft.js';
import type { AccountDocument } from '../src/model/schemas.js';
import { openApi } from '../test/support/api-fixture.js';
import { accountDocument } from './lib/customers.js';
import { benchNetns } from './lib/netns.js';
import { metric, numberParam, registerBenchmark, type Metric } from './lib/registry.js';
import { median } from './lib/stats.js';

/** Rule i of a synthetic firewall: a mix of the shapes customers write (addresses, sets, ports, flags, ICMP, or). */
export function ruleExpression(i: number): string {
  const a = (i >> 8) & 255;
  const b = i & 255;
  const port = 1024 + (i % 60000);
  switch (i % 5) {
    case 0: return `ip.dst == 198.18.${a}.${b} and tcp.dstport in {80 443}`;
    case 1: return `ip.src in {198.51.100.${b}/32 203.0.113.0/24} and udp.dstport == ${port}`;
    case 2: return `ip.dst in {198.18.${a}.0/24} and tcp.flags.syn and not tcp.flags.ack and tcp.dstport == ${port}`;
    case 3: return `ip.proto == "icmp" and icmp.type == 8 and ip.len > ${100 + (i % 1000)}`;
    default: return `(tcp.dstport == ${port} or udp.dstport == ${port}) and ip.ttl < ${2 + (i % 60)}`;
  }
}

async function firewallOfSize(n: number): Promise<AccountDocument> {
  const api = await openApi();
  try {
    const acct = await api.createAccount(`fw-${n}`);
    const rules = Array.from({ length: n }, (_, i) => ({ action: i % 2 ? 'block' : 'allow', expression: ruleExpression(i) }));
    const res = await api.call('PUT', `/v1/accounts/${acct.id}/config`, {
      body: { account: `fw-${n}`, prefixes: [{ cidr: '198.18.0.0/16', advertised: true }], firewall: { default_action: 'block', rules } },
    });
    if (res.statusCode !== 200) throw new Error(`writing a ${n}-rule firewall: ${res.statusCode} ${res.body.slice(0, 300)}`);
    return await accountDocument(api, acct.id);
  } finally {
    await api.close();
  }
}

registerBenchmark({
  name: 'firewall-compile',
  description: 'compile + atomic load of 10/100/1000-rule customer firewalls vs the same ruleset as nft text through nft -f',
  order: 30,
  async run(ctx) {
    const sizes = ctx.quick ? [10, 100] : [10, 100, 1000];
    const repeats = numberParam(ctx, 'repeats', 5, 2);
    const ns = benchNetns();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-bench-fw-'));
    const metrics: Metric[] = [];
    const details: Record<string, unknown> = {};
    try {
      const fwns = await ns.create('fw');
      for (const n of sizes) {
        const doc = await firewallOfSize(n);
        const compileMs: number[] = [];
        const loadMs: number[] = [];
        const textMs: number[] = [];
        let nftRules = 0;
        // First load (not timed): creates the table, which every timed load then replaces.
        const first = firewallTable(doc);
        if (first.problems.length) throw new Error(`firewall of ${n} rules: ${first.problems[0]!.message}`);
        await replaceNftTable(fwns, first.table);
        const listing = (await run(inNetns(fwns, ['nft', 'list', 'table', 'inet', first.table.name]))).stdout;
        const textFile = path.join(tmp, `fw-${n}.nft`);
        fs.writeFileSync(textFile, `table inet ${first.table.name}\ndelete table inet ${first.table.name}\n${listing}`);
        for (let r = 0; r < repeats; r++) {
          const t0 = performance.now();
          const { table } = firewallTable(doc);
          const t1 = performance.now();
          await replaceNftTable(fwns, table);
          const t2 = performance.now();
          compileMs.push(t1 - t0);
          loadMs.push(t2 - t0);
          const ours = (await readNftTable(fwns, 'inet', table.name))!.rules.length;
          const t3 = performance.now();
          await run(inNetns(fwns, ['nft', '-f', textFile]));
          textMs.push(performance.now() - t3);
          const theirs = (await readNftTable(fwns, 'inet', table.name))!.rules.length;
          if (ours !== theirs) throw new Error(`${n} rules: our load made ${ours} nft rules, the text load ${theirs}`);
          nftRules = ours;
        }
        const load = median(loadMs);
        const text = median(textMs);
        metrics.push(
          metric({ name: `compile_load_${n}_rules`, value: load, unit: 'ms', better: 'lower', baseline: { label: 'nft -f text', value: text }, note: 'compile (pure) + nft -j -f replace, median' }),
          metric({ name: `compile_only_${n}_rules`, value: median(compileMs), unit: 'ms', better: 'lower' }),
        );
        details[`rules_${n}`] = { nft_rules: nftRules, compile_ms: compileMs, compile_load_ms: loadMs, nft_text_ms: textMs, text_bytes: fs.statSync(textFile).size };
        ctx.log(`${n} rules (${nftRules} nft rules): ours ${load.toFixed(1)} ms, nft -f text ${text.toFixed(1)} ms`);
      }
      return {
        params: { sizes: sizes.join('/'), repeats },
        metrics,
        notes: ['Rule shapes cycle through 5 templates (single address + port set, source set + port, SYN-only, ICMP + length, tcp-or-udp port + TTL: 2 nft rules).'],
        details,
      };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
      await ns.cleanup();
    }
  },
});
