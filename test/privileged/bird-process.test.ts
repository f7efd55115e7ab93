// BIRD process management on real daemons in a namespace: start, ask, reconfigure, stop, adopt, and the supervisor
// restarting a crashed or hung BIRD.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BirdError,
  BirdSupervisor,
  birdCommand,
  startBird,
  type BirdConfigSpec,
  type BirdInstance,
  type BirdSupervisorEvent,
} from '../../src/kernel/bird.js';
import { KernelInputError } from '../../src/kernel/exec.js';
import { setLink } from '../../src/kernel/links.js';
import { netnsHarness } from '../support/netns.js';

const h = netnsHarness();
let runDir: string;
let ns: string;
const instances: BirdInstance[] = [];
const supervisors: BirdSupervisor[] = [];

/** Pids of `bird` processes whose command line mentions `dir` (ours, and only ours). */
async function birdsUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const [comm, cmdline] = await Promise.all([readFile(`/proc/${entry}/comm`, 'utf8'), readFile(`/proc/${entry}/cmdline`, 'utf8')]);
      if (comm.trim() === 'bird' && cmdline.includes(dir)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

before(async () => {
  runDir = await mkdtemp('/tmp/ott-bird-');
  ns = await h.create('bird');
  await setLink(ns, { name: 'lo', up: true });
});

after(async () => {
  // Even after a failure: stop what we started, kill what is left (by pid), then delete the namespace.
  for (const s of supervisors) await s.stop({ withdrawFirst: false, timeoutMs: 2_000 }).catch(() => undefined);
  for (const i of instances) await i.stop({ withdrawFirst: false, timeoutMs: 2_000 }).catch(() => undefined);
  for (const pid of await birdsUnder(runDir)) process.kill(pid, 'SIGKILL');
  await sleep(100);
  const left = await birdsUnder(runDir);
  await rm(runDir, { recursive: true, force: true });
  await h.cleanup();
  assert.deepEqual(left, [], 'no BIRD process may outlive the test');
});

const spec = (over: Partial<BirdConfigSpec> = {}): BirdConfigSpec => ({
  routerId: '100.64.9.1',
  asn: 65001,
  kernel: { export: 'none', mergePaths: false },
  staticRoutes: [{ prefix: '203.0.113.0/24' }],
  bgpPeers: [],
  ...over,
});

async function start(name: string, s = spec()): Promise<BirdInstance> {
  const i = await startBird({ name, netns: ns, runDir, spec: s });
  instances.push(i);
  return i;
}

test('startBird runs BIRD in the namespace with its own socket, pid file, 0600 config and log; stop leaves nothing', async () => {
  const b = await start('one');
  assert.ok(b.pid! > 1, 'a pid');
  assert.equal(Number((await readFile(b.paths.pidFile, 'utf8')).trim()), b.pid, 'child pid is BIRD itself (nsenter execs)');
  assert.equal((await stat(`/proc/${b.pid}/ns/net`)).ino, (await stat(`/run/netns/${ns}`)).ino, 'BIRD runs in the test namespace');
  assert.equal((await stat(b.paths.config)).mode & 0o777, 0o600);
  const st = await b.status();
  assert.equal(st.version, '2.0.12');
  assert.equal(st.routerId, '100.64.9.1');
  assert.equal(st.state, 'up');
  const health = await b.health();
  assert.equal(health.healthy, true);
  console.log(`# show status answered in ${health.latencyMs!.toFixed(1)} ms`);
  const protocols = await b.showProtocols();
  assert.deepEqual(protocols.map((p) => p.name).sort(), ['device1', 'kernel4', 'kernel6', 'static4', 'static6']);
  assert.ok(protocols.every((p) => p.state === 'up'), JSON.stringify(protocols));
  const routes = await b.showRoutes('master4');
  assert.deepEqual(routes.map((r) => [r.network, r.type, r.protocol]), [['203.0.113.0/24', 'blackhole', 'static4']]);
  assert.deepEqual(await b.showRoutes({ network: '198.51.100.0/24' }), []);

  const exit = await b.stop();
  assert.equal(exit.code, 0, 'birdc down ends BIRD cleanly');
  assert.equal(b.pid, undefined);
  await assert.rejects(stat(b.paths.socket), { code: 'ENOENT' });
  await assert.rejects(stat(b.paths.pidFile), { code: 'ENOENT' });
  assert.deepEqual(await birdsUnder(b.paths.config), []);
  const health2 = await b.health();
  assert.deepEqual([health2.healthy, health2.running, health2.problem], [false, false, 'exited']);
});

test('reconfigure: validated, applied with `configure`, "unchanged" when the text is the same; a bad spec changes nothing', async () => {
  const b = await start('reconf');
  const before = await readFile(b.paths.config, 'utf8');
  assert.equal(await b.reconfigure(spec()), 'unchanged');
  assert.equal(await b.reconfigure(spec({ staticRoutes: [{ prefix: '203.0.113.0/24' }, { prefix: '192.0.2.10/32' }] })), 'reconfigured');
  assert.deepEqual((await b.showRoutes({ table: 'master4' })).map((r) => r.network).sort(), ['192.0.2.10/32', '203.0.113.0/24']);
  const after1 = await readFile(b.paths.config, 'utf8');
  assert.notEqual(after1, before);
  await assert.rejects(b.reconfigure(spec({ bgpPeers: [{ name: 'router', neighbor: '100.64.9.2', remoteAs: 65000, bfd: false, holdTime: 9, keepaliveTime: 3, import: 'none', export: 'none' }] })), KernelInputError);
  assert.equal(await readFile(b.paths.config, 'utf8'), after1, 'a refused spec leaves the file');
  assert.equal((await b.showRoutes({ table: 'master4' })).length, 2, 'and the running config');
  assert.equal((await b.status()).state, 'up');
  await b.stop();
});

test('a second start on the same files fails, adopts, or replaces as asked', async () => {
  const a = await start('dup');
  await assert.rejects(startBird({ name: 'dup', netns: ns, runDir, spec: spec() }), (e: unknown) => e instanceof BirdError && /already running/.test(e.message));
  const adopted = await startBird({ name: 'dup', netns: ns, runDir, spec: spec({ staticRoutes: [{ prefix: '198.51.100.0/24' }] }), ifRunning: 'adopt' });
  instances.push(adopted);
  assert.equal(adopted.adopted, true);
  assert.equal(adopted.pid, a.pid, 'the same daemon, taken over');
  assert.deepEqual((await a.showRoutes({ table: 'master4' })).map((r) => r.network), ['198.51.100.0/24'], 'and reconfigured to the new spec');
  const replaced = await startBird({ name: 'dup', netns: ns, runDir, spec: spec(), ifRunning: 'replace' });
  instances.push(replaced);
  assert.notEqual(replaced.pid, a.pid);
  await a.exited;
  await adopted.exited; // an adopted BIRD is watched by pid: it sees the exit too
  await replaced.stop();
});

test('a config BIRD refuses at start is reported with the log; nothing is left running', async () => {
  // Every config we render passes `bird -p`; what can fail at start is the environment, e.g. a missing namespace.
  await assert.rejects(startBird({ name: 'bad', netns: 'ott-no-such-netns', runDir, spec: spec(), startTimeoutMs: 2_000 }), (e: unknown) => {
    assert.ok(e instanceof BirdError, String(e));
    assert.equal(e.kind, 'process');
    return true;
  });
  assert.deepEqual(await birdsUnder(`${runDir}/bad.`), []);
});

test('birdCommand: unreachable socket and refused commands are typed errors', async () => {
  await assert.rejects(birdCommand(`${runDir}/nothing.ctl`, 'show status'), (e: unknown) => e instanceof BirdError && e.kind === 'unreachable');
  const b = await start('cmd');
  await assert.rejects(b.command('show nonsense'), (e: unknown) => e instanceof BirdError && e.kind === 'reply' && e.replyCode! >= 9000);
  await assert.rejects(b.command('show status\nconfigure'), (e: unknown) => e instanceof KernelInputError && e.field === 'command');
  await b.stop();
});

test('supervisor: restarts a crashed BIRD and kills+restarts a hung one, with backoff; stop ends it', async () => {
  const events: BirdSupervisorEvent[] = [];
  const sup = new BirdSupervisor({
    name: 'sup',
    netns: ns,
    runDir,
    spec: spec(),
    checkIntervalMs: 100,
    healthTimeoutMs: 200,
    failuresBeforeRestart: 2,
    backoff: { initialMs: 50, maxMs: 400 },
    onEvent: (e) => events.push(e),
  });
  supervisors.push(sup);
  const first = await sup.start();
  const waitFor = async (what: string, cond: () => boolean | Promise<boolean>, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events)}`);
      await sleep(20);
    }
  };

  // Crash.
  let t0 = performance.now();
  process.kill(first.pid!, 'SIGKILL');
  await waitFor('a restart after SIGKILL', async () => sup.instance !== undefined && sup.instance !== first && (await sup.instance.isAlive()));
  console.log(`# crashed BIRD back after ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal(sup.restarts, 1);
  assert.ok(events.some((e) => e.type === 'exited' && e.exit.signal === 'SIGKILL'), JSON.stringify(events));

  // The desired spec follows into restarts.
  assert.equal(await sup.reconfigure(spec({ staticRoutes: [{ prefix: '192.0.2.10/32' }] })), 'reconfigured');

  // Hang: SIGSTOP keeps the socket accepting but nothing answers.
  const second = sup.instance!;
  const secondPid = second.pid!;
  t0 = performance.now();
  process.kill(secondPid, 'SIGSTOP');
  await waitFor('the hung BIRD to be replaced', async () => sup.instance !== undefined && sup.instance !== second && (await sup.instance.isAlive()));
  console.log(`# hung BIRD replaced after ${(performance.now() - t0).toFixed(0)} ms (2 failed checks of 200 ms, every 100 ms)`);
  assert.ok(events.some((e) => e.type === 'unhealthy' && e.problem === 'timeout'), JSON.stringify(events));
  assert.ok(events.some((e) => e.type === 'killing-hung' && e.pid === secondPid), JSON.stringify(events));
  assert.equal(sup.restarts, 2);
  assert.deepEqual((await sup.instance!.showRoutes({ table: 'master4' })).map((r) => r.network), ['192.0.2.10/32']);

  const delays = events.filter((e): e is Extract<BirdSupervisorEvent, { type: 'restart-scheduled' }> => e.type === 'restart-scheduled').map((e) => e.delayMs);
  assert.ok(delays.length >= 2 && delays.every((d) => d >= 50 && d <= 400), JSON.stringify(delays));

  const third = sup.instance!;
  await sup.stop();
  assert.ok(third.exitStatus, 'stopped');
  await sleep(300);
  assert.equal(sup.instance, undefined, 'no restart after stop');
  assert.deepEqual(await birdsUnder(`${runDir}/sup.`), []);
});

test('supervisor: the restart delay doubles while starts keep failing, and resets once BIRD is healthy again', async () => {
  const label = 'backoff';
  const bns = await h.create(label);
  await setLink(bns, { name: 'lo', up: true });
  const events: BirdSupervisorEvent[] = [];
  const sup = new BirdSupervisor({
    name: 'backoff',
    netns: bns,
    runDir,
    spec: spec(),
    checkIntervalMs: 100,
    healthTimeoutMs: 500,
    backoff: { initialMs: 40, maxMs: 200 },
    onEvent: (e) => events.push(e),
  });
  supervisors.push(sup);
  const first = await sup.start();
  // Remove the namespace's name (BIRD keeps the namespace alive), then kill BIRD: restarts cannot enter it.
  const { deleteNetnsIfPresent } = await import('../../src/kernel/netns.js');
  await deleteNetnsIfPresent(bns);
  process.kill(first.pid!, 'SIGKILL');
  const scheduled = () => events.filter((e): e is Extract<BirdSupervisorEvent, { type: 'restart-scheduled' }> => e.type === 'restart-scheduled');
  const deadline = Date.now() + 10_000;
  while (scheduled().length < 5 && Date.now() < deadline) await sleep(20);
  assert.deepEqual(scheduled().slice(0, 5).map((e) => e.delayMs), [40, 80, 160, 200, 200]);
  assert.ok(events.some((e) => e.type === 'start-failed'), JSON.stringify(events));
  await h.create(label);
  while (!(sup.instance && (await sup.instance.isAlive())) && Date.now() < deadline + 5_000) await sleep(20);
  assert.ok(sup.instance, `BIRD is back once the namespace is; events: ${JSON.stringify(events.slice(-3))}`);
  await sleep(300); // a healthy check resets the backoff
  const n = scheduled().length;
  process.kill(sup.instance.pid!, 'SIGKILL');
  while (scheduled().length === n && Date.now() < deadline + 10_000) await sleep(20);
  assert.equal(scheduled()[n]!.delayMs, 40);
  await sup.stop({ withdrawFirst: false });
});
