// Namespaces, sysctls and the spawn layer, on the real kernel. Namespaces and sysctls are made in-process (the
// addon, no `ip netns` / `sysctl` spawn): every test checks the result with the real tools, so a namespace or a value
// that only our own code can see would fail.
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { after, test } from 'node:test';
import { KernelError, KernelInputError, resetSpawnStats, run, spawnStats } from '../../src/kernel/exec.js';
import { createNetns, deleteNetnsIfPresent, inNetns, listNetns, NETNS_RUN_DIR, netnsExists, readSysctls, setSysctls } from '../../src/kernel/netns.js';
import { assertNoLeftovers, netnsHarness } from '../support/netns.js';

const h = netnsHarness();
after(() => h.cleanup());

/**
 * A namespace to write sysctls into, checked not to be this process's own first: if createNetns were broken and
 * mounted our own namespace on the name, the test would otherwise change this machine's settings.
 */
async function sysctlTarget(label: string): Promise<string> {
  const n = await h.create(label);
  assert.notEqual(`net:[${statSync(`${NETNS_RUN_DIR}/${n}`).ino}]`, readlinkSync('/proc/thread-self/ns/net'), `${n} is this process's own namespace`);
  return n;
}

test('createNetns is idempotent; listNetns and netnsExists see it', async () => {
  const a = await h.create('a');
  await createNetns(a); // second time: no error
  assert.equal(await netnsExists(a), true);
  assert.deepEqual(await listNetns(h.prefix), [a]);
});

test('deleteNetnsIfPresent removes a namespace and succeeds when it is missing', async () => {
  const b = await h.create('b');
  await deleteNetnsIfPresent(b);
  assert.equal(await netnsExists(b), false);
  await deleteNetnsIfPresent(b);
  await deleteNetnsIfPresent(h.name('never-made'));
});

test('inNetns runs a tool inside the namespace only', async () => {
  const a = await h.create('a');
  const { stdout } = await run(inNetns(a, ['ip', '-br', 'link']));
  assert.deepEqual(stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]), ['lo']);
});

test('setSysctls writes several keys without a spawn; readSysctls reads them back', async () => {
  const a = await sysctlTarget('a');
  resetSpawnStats();
  await setSysctls(a, {
    'net.ipv4.ip_forward': 1,
    'net.ipv4.conf.all.send_redirects': 0,
    'net.ipv4.fib_multipath_hash_policy': 1,
  });
  assert.deepEqual(await readSysctls(a, ['net.ipv4.ip_forward', 'net.ipv4.conf.all.send_redirects', 'net.ipv4.fib_multipath_hash_policy']), {
    'net.ipv4.ip_forward': '1',
    'net.ipv4.conf.all.send_redirects': '0',
    'net.ipv4.fib_multipath_hash_policy': '1',
  });
  assert.equal(spawnStats().spawns, 0);
  // Idempotent.
  await setSysctls(a, { 'net.ipv4.ip_forward': 1 });
});

test('a failing sysctl key is named in the error; the other keys are still written', async () => {
  const a = await sysctlTarget('a');
  await setSysctls(a, { 'net.ipv4.conf.all.send_redirects': 1 });
  await assert.rejects(setSysctls(a, { 'net.ipv4.conf.all.send_redirects': 0, 'net.ipv4.no_such_key': 1 }), (e: unknown) => {
    assert.ok(e instanceof KernelError);
    assert.equal(e.failures.length, 1);
    assert.deepEqual(e.failures[0]!.command, ['net.ipv4.no_such_key']);
    assert.equal(e.failures[0]!.code, 'ENOENT');
    return true;
  });
  assert.equal((await readSysctls(a, ['net.ipv4.conf.all.send_redirects']))['net.ipv4.conf.all.send_redirects'], '0');
});

test('bad input is refused before anything is spawned, naming the field', async () => {
  await assert.rejects(setSysctls(h.name('a'), { 'net.ipv4.ip_forward': '1; reboot' }), (e: unknown) => e instanceof KernelInputError && /sysctl net.ipv4.ip_forward/.test(e.message));
  await assert.rejects(createNetns('../etc'), (e: unknown) => e instanceof KernelInputError && e.field === 'netns');
  await assert.rejects(deleteNetnsIfPresent('a/b'), (e: unknown) => e instanceof KernelInputError && e.field === 'netns');
  await assert.rejects(createNetns('..'), (e: unknown) => e instanceof KernelInputError && e.field === 'netns');
  // Sysctl keys become /proc/sys paths: only dotted words under the per-netns net trees we set.
  for (const key of ['kernel.hostname', 'net.ipv4..conf', 'net.ipv4.conf.all/../../../kernel/hostname', 'net', 'fs.file-max', 'net.unix.max_dgram_qlen']) {
    await assert.rejects(setSysctls(h.name('a'), { [key]: 1 }), (e: unknown) => e instanceof KernelInputError && e.field.includes(JSON.stringify(key)), key);
    await assert.rejects(readSysctls(h.name('a'), [key]), (e: unknown) => e instanceof KernelInputError, key);
  }
});

/** The netns of this (the JS) thread, as the kernel names it (net:[inode]). */
const ownNetns = () => readlinkSync('/proc/thread-self/ns/net');

/** Mount points under /run/netns whose path mentions `prefix` (the mount table is where a leaked bind mount shows). */
const mountsMentioning = (prefix: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(`${NETNS_RUN_DIR}/${prefix}`));

test('a namespace made in-process is a real named netns: ip netns list shows it, ip -n enters it, it is new and empty', async () => {
  const own = ownNetns();
  resetSpawnStats();
  const a = await h.create('real-a');
  const b = await h.create('real-b');
  assert.equal(spawnStats().spawns, 0, 'createNetns spawned a process');
  assert.equal(ownNetns(), own, 'the JS thread changed namespace');
  const listed = (await run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]);
  assert.ok(listed.includes(a) && listed.includes(b), listed.join(','));
  // A namespace of its own: not ours, not the other one's (a bind mount of the wrong thread's netns would be).
  const inode = (n: string) => statSync(`${NETNS_RUN_DIR}/${n}`).ino;
  const ownInode = Number(/\[(\d+)\]/.exec(own)![1]);
  assert.notEqual(inode(a), ownInode);
  assert.notEqual(inode(a), inode(b));
  assert.equal((await run(['ip', 'netns', 'exec', a, 'readlink', '/proc/self/ns/net'])).stdout.trim(), `net:[${inode(a)}]`);
  // Usable by iproute2: a veth from a into b, seen from both sides.
  await run(['ip', '-n', a, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', b]);
  assert.deepEqual((await run(['ip', '-n', b, '-br', 'link'])).stdout.trim().split('\n').map((l) => l.split(/[\s@]+/)[0]).sort(), ['lo', 'vb']);
  // The mount is shared like iproute2's (so deleting it frees the namespace in every mount namespace).
  const m = mountsMentioning(a);
  assert.equal(m.length, 1, m.join('\n'));
  assert.match(m[0]!, / shared:\d+ /);
  assert.match(m[0]!, / - nsfs /);
});

test('delete removes the name and its mount; a namespace made by `ip netns add` is deleted too, and ours by `ip netns del`', async () => {
  const a = await h.create('del-a');
  await deleteNetnsIfPresent(a);
  assert.equal(await netnsExists(a), false);
  assert.deepEqual(mountsMentioning(a), []);
  assert.ok(!(await run(['ip', 'netns', 'list'])).stdout.includes(a));

  const byIp = h.name('del-ip');
  await run(['ip', 'netns', 'add', byIp]);
  await createNetns(byIp); // already there: left alone
  await deleteNetnsIfPresent(byIp);
  assert.deepEqual(mountsMentioning(byIp), []);
  assert.equal(await netnsExists(byIp), false);

  const ours = await h.create('del-ours');
  await run(['ip', 'netns', 'del', ours]);
  assert.equal(await netnsExists(ours), false);
  assert.deepEqual(mountsMentioning(ours), []);
});

test('create is idempotent and repairs a bare name left by a creator that died before mounting', async () => {
  const a = await h.create('idem');
  const ino = statSync(`${NETNS_RUN_DIR}/${a}`).ino;
  await createNetns(a);
  assert.equal(statSync(`${NETNS_RUN_DIR}/${a}`).ino, ino, 'an existing namespace was replaced');
  assert.equal(mountsMentioning(a).length, 1);

  const bare = h.name('bare');
  closeSync(openSync(`${NETNS_RUN_DIR}/${bare}`, 'wx', 0)); // what `ip netns add` leaves if killed between its two steps
  await assert.rejects(run(['ip', '-n', bare, 'link']), 'a bare file is not a namespace');
  // …so a reconciler asking "does it exist?" must hear no, or it never creates it (seen: setns EINVAL forever).
  assert.equal(await netnsExists(bare), false, 'a bare file counts as no namespace');
  assert.equal(await netnsExists(a), true);
  await createNetns(bare);
  assert.equal(await netnsExists(bare), true);
  assert.match((await run(['ip', '-n', bare, '-br', 'link'])).stdout, /^lo\s/);
  assert.equal(mountsMentioning(bare).length, 1);
});

test('sysctls are per namespace both ways: ours read by `ip netns exec sysctl`, theirs read by ours; others untouched', async () => {
  const own = ownNetns();
  const ownRedirects = readFileSync('/proc/sys/net/ipv4/conf/all/send_redirects', 'utf8').trim();
  const a = await sysctlTarget('sys-a');
  const b = await sysctlTarget('sys-b');
  // New namespaces start from the machine's own IPv4 settings (devconf inheritance), so values are compared with
  // what each namespace held before, never with assumed defaults.
  const cliRead = async (ns: string, key: string) => (await run(['ip', 'netns', 'exec', ns, 'sysctl', '-n', key])).stdout.trim();
  const bRedirects = await cliRead(b, 'net.ipv4.conf.all.send_redirects');
  const want = bRedirects === '1' ? 0 : 1;
  await setSysctls(a, { 'net.ipv4.conf.all.send_redirects': want, 'net.ipv4.fib_multipath_hash_policy': 1 });
  assert.equal(ownNetns(), own);
  assert.equal((await run(['ip', 'netns', 'exec', a, 'sysctl', '-n', 'net.ipv4.conf.all.send_redirects', 'net.ipv4.fib_multipath_hash_policy'])).stdout, `${want}\n1\n`);
  // b and this process's own namespace kept their values.
  assert.equal(await cliRead(b, 'net.ipv4.conf.all.send_redirects'), bRedirects);
  assert.equal(readFileSync('/proc/sys/net/ipv4/conf/all/send_redirects', 'utf8').trim(), ownRedirects);
  // The other way: a value set by the tool is what readSysctls sees, and only in that namespace.
  const aForward = await cliRead(a, 'net.ipv4.ip_forward');
  const flipped = aForward === '1' ? '0' : '1';
  await run(['ip', 'netns', 'exec', b, 'sysctl', '-q', '-w', `net.ipv4.ip_forward=${flipped}`]);
  assert.deepEqual(await readSysctls(b, ['net.ipv4.ip_forward']), { 'net.ipv4.ip_forward': flipped });
  assert.deepEqual(await readSysctls(a, ['net.ipv4.ip_forward']), { 'net.ipv4.ip_forward': aForward });
  // Per-interface keys resolve in the namespace: lo exists in every one, a veth only in its own.
  await run(['ip', '-n', a, 'link', 'add', 'sx0', 'type', 'veth', 'peer', 'name', 'sx1']);
  await setSysctls(a, { 'net.ipv4.conf.sx0.rp_filter': 2 });
  assert.equal((await run(['ip', 'netns', 'exec', a, 'sysctl', '-n', 'net.ipv4.conf.sx0.rp_filter'])).stdout.trim(), '2');
  await assert.rejects(readSysctls(b, ['net.ipv4.conf.sx0.rp_filter']), (e: unknown) => e instanceof KernelError && e.code === 'ENOENT');
  // A value the kernel refuses is named with the key and EINVAL.
  await assert.rejects(setSysctls(a, { 'net.ipv4.fib_multipath_hash_policy': 99 }), (e: unknown) => {
    assert.ok(e instanceof KernelError);
    assert.deepEqual(e.failures.map((f) => [f.command[0], f.code]), [['net.ipv4.fib_multipath_hash_policy', 'EINVAL']]);
    assert.match(e.message, /fib_multipath_hash_policy/);
    return true;
  });
  assert.equal(ownNetns(), own);
});

test("per-device IPv4 settings go through rtnetlink (devconf.ts) and agree with /proc/sys both ways", async () => {
  const a = await sysctlTarget('devconf');
  await run(['ip', '-n', a, 'link', 'add', 'dc0', 'type', 'veth', 'peer', 'name', 'dc1']);
  const keys = ['send_redirects', 'rp_filter', 'accept_local'];
  const cli = async (dev: string) => (await run(['ip', 'netns', 'exec', a, 'sysctl', '-n', ...keys.map((k) => `net.ipv4.conf.${dev}.${k}`)])).stdout.trim().split('\n');
  const ours = async (dev: string) => Object.values(await readSysctls(a, keys.map((k) => `net.ipv4.conf.${dev}.${k}`)));
  // Values the tool set are what we read (each differs from its neighbours, so a wrong array index cannot pass).
  await run(['ip', 'netns', 'exec', a, 'sysctl', '-q', '-w', 'net.ipv4.conf.dc0.send_redirects=0', 'net.ipv4.conf.dc0.rp_filter=2', 'net.ipv4.conf.dc0.accept_local=1']);
  assert.deepEqual(await ours('dc0'), ['0', '2', '1']);
  assert.deepEqual(await cli('dc0'), ['0', '2', '1']);
  // Values we set are what the tool reads; dc1 and lo keep theirs.
  const before = { dc1: await cli('dc1'), lo: await cli('lo') };
  resetSpawnStats();
  await setSysctls(a, { 'net.ipv4.conf.dc0.send_redirects': 1, 'net.ipv4.conf.dc0.rp_filter': 1, 'net.ipv4.conf.dc0.accept_local': 0 });
  await setSysctls(a, { 'net.ipv4.conf.dc1.rp_filter': 0, 'net.ipv4.conf.dc1.accept_local': 1, 'net.ipv4.conf.all.rp_filter': 0 });
  assert.equal(spawnStats().spawns, 0);
  assert.deepEqual(await cli('dc0'), ['1', '1', '0']);
  assert.deepEqual(await cli('dc1'), [before.dc1[0], '0', '1']);
  assert.deepEqual(await cli('lo'), before.lo);
  assert.deepEqual(await ours('dc1'), await cli('dc1'));
  // A device set by us is not overwritten by a later `default` write (the setting is marked as set, as /proc does).
  await setSysctls(a, { 'net.ipv4.conf.default.rp_filter': 2 });
  assert.equal((await cli('dc0'))[1], '1');
  // A missing device fails its key alone, as its /proc/sys file would (ENOENT, named), and the others are written.
  await assert.rejects(setSysctls(a, { 'net.ipv4.conf.nodev0.rp_filter': 0, 'net.ipv4.conf.dc0.rp_filter': 0 }), (e: unknown) => {
    assert.ok(e instanceof KernelError);
    assert.deepEqual(e.failures.map((f) => [f.command[0], f.code]), [['net.ipv4.conf.nodev0.rp_filter', 'ENOENT']]);
    assert.match(e.message, /nodev0/);
    return true;
  });
  assert.equal((await cli('dc0'))[1], '0');
  await assert.rejects(readSysctls(a, ['net.ipv4.conf.nodev0.send_redirects']), (e: unknown) => e instanceof KernelError && e.code === 'ENOENT' && /nodev0/.test(e.message));
});

test('all/default forwarding and rp_filter are read through RTM_GETNETCONF and agree with sysctl(8)', async () => {
  const a = await sysctlTarget('netconf');
  const keys = ['net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding', 'net.ipv4.conf.default.forwarding', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter', 'net.ipv6.conf.all.forwarding', 'net.ipv6.conf.default.forwarding'];
  const cli = async () => (await run(['ip', 'netns', 'exec', a, 'sysctl', '-n', ...keys])).stdout.trim().split('\n');
  // Two settings of every key, each time with neighbours that differ, so a swapped attribute cannot pass.
  for (const [fwd4, fwdDefault4, rpAll, rpDefault, fwd6, fwdDefault6] of [[1, 0, 2, 1, 0, 1], [0, 1, 1, 2, 1, 0]]) {
    await run(['ip', 'netns', 'exec', a, 'sysctl', '-q', '-w', `net.ipv4.conf.all.forwarding=${fwd4}`, `net.ipv4.conf.default.forwarding=${fwdDefault4}`,
      `net.ipv4.conf.all.rp_filter=${rpAll}`, `net.ipv4.conf.default.rp_filter=${rpDefault}`, `net.ipv6.conf.all.forwarding=${fwd6}`, `net.ipv6.conf.default.forwarding=${fwdDefault6}`]);
    const want = await cli();
    assert.deepEqual(want, [fwd4, fwd4, fwdDefault4, rpAll, rpDefault, fwd6, fwdDefault6].map(String));
    assert.deepEqual(Object.values(await readSysctls(a, keys)), want);
  }
});

test('a missing namespace is a KernelError (ENOENT) naming it, and the thread stays where it was', async () => {
  const own = ownNetns();
  const missing = h.name('missing');
  await assert.rejects(setSysctls(missing, { 'net.ipv4.ip_forward': 1 }), (e: unknown) => e instanceof KernelError && e.code === 'ENOENT' && e.message.includes(missing));
  await assert.rejects(readSysctls(missing, ['net.ipv4.ip_forward']), (e: unknown) => e instanceof KernelError && e.code === 'ENOENT' && e.message.includes(missing));
  assert.equal(ownNetns(), own);
});

test('KernelError carries the command, the exit status and the kernel message', async () => {
  await assert.rejects(run(['ip', 'link', 'show', 'dev', 'ott-nosuch']), (e: unknown) => {
    assert.ok(e instanceof KernelError);
    assert.deepEqual(e.argv, ['ip', 'link', 'show', 'dev', 'ott-nosuch']);
    assert.notEqual(e.exitCode, 0);
    assert.match(e.kernelMessage, /does not exist/);
    assert.equal(e.code, 'ENOENT');
    return true;
  });
  await assert.rejects(run(['sleep', '5'], { timeoutMs: 50 }), (e: unknown) => e instanceof KernelError && e.timedOut && e.code === 'TIMEOUT');
  await assert.rejects(run(['ott-no-such-program']), (e: unknown) => e instanceof KernelError && /program not found/.test(e.message));
});

test('cleanup leaves nothing with the prefix (checked again by after())', async () => {
  const h2 = netnsHarness();
  await h2.create('x');
  await h2.create('y');
  await h2.cleanup();
  await assertNoLeftovers(h2.prefix);
});
