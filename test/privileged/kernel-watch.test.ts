/**
 * kernel/netlink/watch.ts against the real kernel: notifications from a peer namespace arrive with the id the
 * watching namespace gives it, our own writes are told from other processes', a namespace deleted by name is
 * seen, and a receive buffer that overflows is reported (and the watch goes on).
 */
import { test, before, after } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { KernelWatch, type KernelChange } from '../../src/kernel/netlink/watch.js';
import { ensureVeth, getLink } from '../../src/kernel/links.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { routeReplaceOp, RT_PROTO_OPENTRANSIT } from '../../src/kernel/routes.js';
import { applyNftDocument } from '../../src/kernel/nft.js';
import { inNetns } from '../../src/kernel/netns.js';
import { run } from '../../src/kernel/exec.js';
import { netnsHarness } from '../support/netns.js';
import { waitFor } from '../support/agent-wait.js';

const harness = netnsHarness();
let host: string;
let peer: string;
let watch: KernelWatch | undefined;
const seen: KernelChange[] = [];
let overflows = 0;

before(async () => {
  host = await harness.create('watch-host');
  peer = await harness.create('watch-peer');
  await ensureVeth({ ns: host, name: 'vh', mac: '02:00:00:00:01:01', peerNs: peer, peerName: 'vp', peerMac: '02:00:00:00:01:02' });
  await runIpOps(peer, [{ args: ['address', 'replace', '10.77.0.1/30', 'dev', 'vp'] }]);
  watch = await KernelWatch.open({ netns: host, onChanges: (cs) => seen.push(...cs), onOverflow: () => overflows++ });
});

after(async () => {
  watch?.close();
  await harness.cleanup();
});

/** The id `host` gives `peer`: what the host side of the veth names as its peer's namespace. */
async function peerNsid(): Promise<number> {
  const id = (await getLink(host, 'vh'))?.linkNetnsId;
  assert.notEqual(id, undefined, 'the host side of the veth names its peer namespace');
  return id!;
}

async function expectChange(what: string, match: (c: KernelChange) => boolean, act: () => Promise<unknown>): Promise<KernelChange> {
  const from = seen.length;
  await act();
  let found: KernelChange | undefined;
  await waitFor(what, () => (found = seen.slice(from).find(match)) !== undefined, { timeoutMs: 5000, context: () => JSON.stringify(seen.slice(from)) });
  return found!;
}

test('a route deleted in the peer namespace by another process: with its namespace id, not ours', async () => {
  const nsid = await peerNsid();
  // Added through our own socket: reported as ours.
  const added = await expectChange('our route added', (c) => c.kind === 'route' && c.nsid === nsid && !c.deleted && c.protocol === RT_PROTO_OPENTRANSIT, () =>
    runIpOps(peer, [routeReplaceOp({ dst: '10.78.0.0/24', nexthops: [{ via: '10.77.0.2', dev: 'vp' }] })]),
  );
  assert.equal(added.own, true);
  const deleted = await expectChange('route deleted by ip', (c) => c.kind === 'route' && c.nsid === nsid && c.deleted, () =>
    run(['ip', '-n', peer, 'route', 'del', '10.78.0.0/24']),
  );
  assert.equal(deleted.own, false);
  assert.equal(deleted.byKernel, false);
  assert.deepEqual(deleted.oifs, [(await getLink(peer, 'vp'))!.ifindex]);
});

test('nftables commits: ours (libnftables in-process) and another process’s', async () => {
  const nsid = await peerNsid();
  const table = { family: 'inet', name: 'ottwatch' };
  const ours = await expectChange('our commit', (c) => c.kind === 'nft' && c.nsid === nsid, () => applyNftDocument(peer, { nftables: [{ add: { table } }] }));
  assert.equal(ours.own, true);
  const theirs = await expectChange('nft by another process', (c) => c.kind === 'nft' && c.nsid === nsid, () =>
    run(inNetns(peer, ['nft', 'delete', 'table', 'inet', 'ottwatch'])),
  );
  assert.equal(theirs.own, false);
});

test('links: a change of state is reported, a host link keeps its name after deletion; tc deletions', async () => {
  const nsid = await peerNsid();
  const down = await expectChange('vp down', (c) => c.kind === 'link' && c.nsid === nsid && c.link?.name === 'vp' && c.link.up === false, () =>
    run(['ip', '-n', peer, 'link', 'set', 'vp', 'down']),
  );
  assert.equal(watch!.link(nsid, down.ifindex!)?.up, false, 'the last state seen is kept');
  await run(['ip', '-n', peer, 'link', 'set', 'vp', 'up']);
  await run(['tc', '-n', host, 'qdisc', 'add', 'dev', 'vh', 'clsact']);
  const tc = await expectChange('clsact deleted', (c) => c.kind === 'tc' && c.nsid === null && c.deleted, () => run(['tc', '-n', host, 'qdisc', 'del', 'dev', 'vh', 'clsact']));
  assert.equal(watch!.hostLink(tc.ifindex!)?.name, 'vh');
});

test('a namespace deleted by name is reported by name', async () => {
  const extra = await harness.create('watch-gone');
  const gone = await expectChange('namespace deleted', (c) => c.kind === 'netns' && c.name === extra && c.deleted, () => run(['ip', 'netns', 'del', extra]));
  assert.equal(gone.nsid, null);
});

test('an overflowing receive buffer is reported, and the watch goes on', async () => {
  const small = harness.name('watch-small');
  await harness.create('watch-small');
  let lost = 0;
  const got: KernelChange[] = [];
  // The smallest buffer the kernel allows.
  const w = await KernelWatch.open({ netns: small, rcvbufBytes: 1, onChanges: (cs) => got.push(...cs), onOverflow: () => lost++ });
  try {
    await run(['ip', '-n', small, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1']);
    await run(['ip', '-n', small, 'link', 'set', 'd0', 'up']);
    const batch = Array.from({ length: 400 }, (_, i) => `route add 10.90.${i >> 8}.${i & 255}/32 dev d0`).join('\n');
    // Synchronously: the JS thread cannot drain the socket while the kernel notifies 400 routes.
    execFileSync('ip', ['-n', small, '-batch', '-'], { input: `${batch}\n` });
    await waitFor('overflow reported', () => lost > 0, { timeoutMs: 5000 });
    const from = got.length;
    await run(['ip', '-n', small, 'route', 'add', '10.91.0.0/24', 'dev', 'd0']);
    await waitFor('a later change seen', () => got.slice(from).some((c) => c.kind === 'route' && !c.deleted), { timeoutMs: 5000 });
  } finally {
    w.close();
  }
});

test('the handler never runs before open() has returned the watch, even for changes made during its dump', async () => {
  const busy = harness.name('watch-busy');
  await harness.create('watch-busy');
  await run(['ip', '-n', busy, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1']);
  await run(['ip', '-n', busy, 'link', 'set', 'd0', 'up']);
  // Another process changes routes non-stop while watches open (their dump takes a while on a busy machine).
  const batch = Array.from({ length: 3000 }, (_, i) => `route ${i % 2 ? 'del' : 'add'} 10.92.${(i >> 1) & 255}.0/24 dev d0`).join('\n');
  const churn = run(['ip', '-n', busy, '-batch', '-'], { stdin: `${batch}\n` });
  let early = 0;
  let delivered = 0;
  for (let i = 0; i < 5; i++) {
    let w: KernelWatch | undefined;
    w = await KernelWatch.open({
      netns: busy,
      onChanges: (cs) => {
        if (w === undefined) early++;
        else delivered += cs.length;
      },
      onOverflow: () => {},
    });
    await new Promise((r) => setTimeout(r, 20));
    w.close();
  }
  await churn;
  assert.equal(early, 0, 'a handler ran before its watch was returned');
  assert.ok(delivered > 0, 'changes were delivered');
});
