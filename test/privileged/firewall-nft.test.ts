/**
 * The kernel accepts every firewall rule the compiler emits: random expressions are compiled and loaded, in
 * batches, into a real nftables table inside a throwaway namespace (unit tests check the semantics).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileExpression, FirewallCompileError } from '../../src/agent/desired/firewall-match.js';
import { applyNftDocument, readNftTable, type NftCommand } from '../../src/kernel/nft.js';
import { exprArb } from '../support/expression-arbitrary.js';
import { netnsHarness } from '../support/netns.js';

const harness = netnsHarness();
after(() => harness.cleanup());

test('nft accepts the compiled form of 300 random expressions', async () => {
  const ns = await harness.create('fw');
  const table = { family: 'inet', name: 'fwcheck' };
  const expressions = fc.sample(exprArb, { numRuns: 300, seed: 42 });
  let rules = 0;
  for (let batch = 0; batch < expressions.length; batch += 50) {
    const cmds: NftCommand[] = [
      { add: { table } },
      { add: { chain: { family: 'inet', table: table.name, name: `c${batch}` } } },
    ];
    for (const expr of expressions.slice(batch, batch + 50)) {
      let dnf;
      try {
        dnf = compileExpression(expr);
      } catch (e) {
        if (e instanceof FirewallCompileError) continue;
        throw e;
      }
      for (const conj of dnf) {
        cmds.push({ add: { rule: { family: 'inet', table: table.name, chain: `c${batch}`, expr: [...conj, { counter: null }, { accept: null }] as never } } });
        rules++;
      }
    }
    await applyNftDocument(ns, { nftables: cmds });
  }
  const state = await readNftTable(ns, 'inet', 'fwcheck');
  assert.ok(state, 'table is there');
  assert.equal(state.rules.length, rules);
  assert.ok(rules > 250, `only ${rules} rules`);
});
