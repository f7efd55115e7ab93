// Reading `apply -f` files: the shipped example, several documents, and YAML mistakes reported by line/column.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfigDocuments } from '../../src/cli/documents.js';
import { UsageError } from '../../src/cli/errors.js';

// Compiled tests run from dist/test/unit, tsx runs them from test/unit: find the repo root either way.
const root = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url));

test('examples/acme.yaml is one document for account acme, exactly as the issue specifies', () => {
  const docs = parseConfigDocuments(readFileSync(`${root}examples/acme.yaml`, 'utf8'), 'acme.yaml');
  assert.equal(docs.length, 1);
  assert.equal(docs[0]?.account, 'acme');
  assert.deepEqual(docs[0]?.body, {
    account: 'acme',
    prefixes: [{ cidr: '203.0.113.0/24', advertised: true }],
    gre_tunnels: [{
      name: 'acme-chi',
      customer_gre_endpoint: '198.51.100.2',
      edge_gre_endpoint: '192.0.2.10',
      interface_address: '10.200.0.0/31',
    }],
    routes: [{ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 100 }],
    firewall: {
      default_action: 'block',
      rules: [{ action: 'allow', expression: 'ip.dst == 203.0.113.100 and tcp.dstport in {20..21}' }],
    },
  });
});

test('several documents come back in file order with their start lines; empty ones are skipped', () => {
  const docs = parseConfigDocuments('account: a\n---\n---\n# b next\naccount: b\nprefixes: []\n---\n', 'f.yaml');
  assert.deepEqual(docs.map((d) => [d.index, d.line, d.account]), [[1, 1, 'a'], [3, 5, 'b']]);
  assert.deepEqual(docs[1]?.body, { account: 'b', prefixes: [] });
});

function usageError(text: string): UsageError {
  try {
    parseConfigDocuments(text, 'f.yaml');
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected a UsageError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected an error');
}

test('a YAML syntax error names the file, line and column', () => {
  const err = usageError('account: acme\nprefixes:\n  - cidr: 203.0.113.0/24\n   advertised: true\n');
  assert.match(err.message, /^f\.yaml:4:\d+: /);
  assert.doesNotMatch(err.message, /\n/);
});

test('an unclosed flow sequence is reported where YAML notices it', () => {
  assert.match(usageError('account: acme\nprefixes: [\n').message, /^f\.yaml:3:1: /);
});

test('a duplicated key is an error, not a silent overwrite', () => {
  const err = usageError('account: acme\naccount: other\n');
  assert.match(err.message, /^f\.yaml:2:1: Map keys must be unique$/);
});

test('an error in a later document names its own line', () => {
  assert.match(usageError('account: a\n---\naccount: b\nroutes: {\n').message, /^f\.yaml:5:1: /);
});

test('a document without "account" is refused, naming the field', () => {
  const err = usageError('account: a\n---\nprefixes: []\n');
  assert.equal(err.field, 'account');
  assert.match(err.message, /^f\.yaml:3: document 2 needs "account: NAME"/);
  assert.equal(usageError('account: 5\n').field, 'account');
});

test('a document that is not a mapping is refused', () => {
  assert.match(usageError('- account: a\n').message, /^f\.yaml:1: document 1 must be a mapping/);
});

test('an empty file is refused', () => {
  assert.match(usageError('').message, /no YAML document found/);
  assert.match(usageError('# only a comment\n---\n').message, /no YAML document found/);
});
