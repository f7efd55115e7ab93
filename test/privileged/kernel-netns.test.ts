// Namespaces, sysctls and the spawn layer, on the real kernel.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { KernelError, KernelInputError, run } from '../../src/kernel/exec.js';
import { createNetns, deleteNetnsIfPresent, inNetns, listNetns, netnsExists, readSysctls, setSysctls } from '../../src/kernel/netns.js';
import { assertNoLeftovers, netnsHarness } from '../support/netns.js';

const h = netnsHarness();
after(() => h.cleanup());

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

test('setSysctls writes several keys in one spawn; readSysctls reads them back', async () => {
  const a = await h.create('a');
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
  // Idempotent.
  await setSysctls(a, { 'net.ipv4.ip_forward': 1 });
});

test('a failing sysctl key is named in the error; the other keys are still written', async () => {
  const a = await h.create('a');
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
