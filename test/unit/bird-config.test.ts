// BIRD config rendering: field checks that name the field, the text BIRD gets, and the real `bird -p` accepting it.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { BIRD_RESERVED_WORDS, BirdError, checkBirdConfig, renderBirdConfig, validateBirdConfigFile, writeBirdConfig, type BirdBgpPeerSpec, type BirdConfigSpec } from '../../src/kernel/bird.js';
import { KernelInputError } from '../../src/kernel/exec.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ot-bird-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const peer = (over: Partial<BirdBgpPeerSpec> = {}): BirdBgpPeerSpec => ({
  name: 'peer_100_64_0_1',
  neighbor: '100.64.0.1',
  remoteAs: 65000,
  bfd: true,
  holdTime: 9,
  keepaliveTime: 3,
  import: 'none',
  export: ['203.0.113.0/24', '192.0.2.10/32'],
  ...over,
});

const edge = (over: Partial<BirdConfigSpec> = {}): BirdConfigSpec => ({
  routerId: '100.64.0.2',
  asn: 65001,
  kernel: { export: 'none', mergePaths: false },
  staticRoutes: [{ prefix: '203.0.113.0/24' }, { prefix: '192.0.2.10/32', type: 'unreachable' }],
  bgpPeers: [peer()],
  ...over,
});

function rejectsField(fn: () => unknown, field: string, reason?: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof KernelInputError, `expected KernelInputError, got ${String(e)}`);
    assert.equal(e.field, field);
    if (reason) assert.match(e.reason, reason);
    return true;
  });
}

test('an edge config: static announce routes, exact-prefix export filter, BFD 50 ms × 3, nothing installed in the kernel', () => {
  const text = renderBirdConfig(edge({ bgpPeers: [peer({ password: 'S3cr!t#{;}', connectDelayTime: 1, errorWaitTime: { min: 1, max: 10 } })] }));
  assert.match(text, /^router id 100\.64\.0\.2;$/m);
  assert.match(text, /^  route 203\.0\.113\.0\/24 blackhole;$/m);
  assert.match(text, /^  route 192\.0\.2\.10\/32 unreachable;$/m);
  assert.match(text, /^  ipv4 \{ import none; export none; \};$/m);
  assert.match(text, /export filter \{ if net ~ \[ 203\.0\.113\.0\/24, 192\.0\.2\.10\/32 \] then accept; reject; \};/);
  assert.match(text, /min rx interval 50 ms; min tx interval 50 ms; multiplier 3;/);
  assert.match(text, /^  local as 65001;$/m);
  assert.match(text, /^  neighbor 100\.64\.0\.1 as 65000;$/m);
  assert.match(text, /^  bfd on;$/m);
  assert.match(text, /^  password "S3cr!t#\{;\}";$/m);
  assert.match(text, /^  error wait time 1, 10;$/m);
  assert.doesNotMatch(text, /merge paths/);
});

test('a router config: merge paths (ECMP), kernel export of everything but static routes, import all', () => {
  const text = renderBirdConfig({
    routerId: '100.64.0.1',
    asn: 65000,
    kernel: { export: 'all', mergePaths: true, mergePathsLimit: 8, table: 100, learn: true },
    directInterfaces: ['r-e1', 'eth*'],
    staticRoutes: [],
    bgpPeers: [peer({ name: 'e1', neighbor: '100.64.0.2', remoteAs: 65001, import: 'all', export: 'none', bfd: false })],
  });
  assert.match(text, /^  merge paths on limit 8;$/m);
  assert.match(text, /^  kernel table 100;$/m);
  assert.match(text, /^  learn;$/m);
  assert.match(text, /ipv4 \{ import all; export where source != RTS_STATIC; \};/);
  assert.match(text, /interface "r-e1", "eth\*";/);
  assert.doesNotMatch(text, /protocol bfd/, 'no BFD protocol when no peer wants BFD');
  assert.match(text, /^    import all;$/m);
  assert.match(text, /^    export none;$/m);
});

test('an empty prefix list renders as none (never an empty set), prefixes are canonicalised and deduplicated', () => {
  const text = renderBirdConfig(edge({ staticRoutes: [], bgpPeers: [peer({ export: [], import: ['2001:DB8::/32'], neighbor: '2001:db8:0::1' })] }));
  assert.match(text, /^    export none;$/m);
  assert.match(text, /import filter \{ if net ~ \[ 2001:db8::\/32 \] then accept; reject; \};/);
  assert.match(text, /^  ipv6 \{$/m, 'an IPv6 neighbour gets an ipv6 channel');
  const dedup = renderBirdConfig(edge({ bgpPeers: [peer({ export: ['203.0.113.0/24', '203.0.113.0/24'] })] }));
  assert.match(dedup, /\[ 203\.0\.113\.0\/24 \]/);
});

test('protocol names: [a-z0-9_], not "router" nor another BIRD keyword, not one of the renderer\'s own', () => {
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ name: 'router' })] })), 'bgpPeers[0].name', /keyword/);
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ name: 'kernel4' })] })), 'bgpPeers[0].name', /renderer/);
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ name: 'Peer' })] })), 'bgpPeers[0].name');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ name: 'p; }' })] })), 'bgpPeers[0].name');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ name: '1peer' })] })), 'bgpPeers[0].name');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer(), peer({ neighbor: '100.64.0.5' })] })), 'bgpPeers[1].name', /another peer/);
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer(), peer({ name: 'second_peer' })] })), 'bgpPeers[1].neighbor', /another peer/);
});

test('nothing unvalidated reaches the text: injection attempts in every string field are refused', () => {
  const evil = '203.0.113.0/24 ]; }; protocol bgp x { ';
  rejectsField(() => renderBirdConfig(edge({ staticRoutes: [{ prefix: evil }] })), 'staticRoutes[0].prefix');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ export: [evil] })] })), 'bgpPeers[0].export[0]');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ import: ['0.0.0.0/0"'] })] })), 'bgpPeers[0].import[0]');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ neighbor: '100.64.0.1; multihop' })] })), 'bgpPeers[0].neighbor');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ password: 'a"; export all; "' })] })), 'bgpPeers[0].password');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ password: 'back\\slash' })] })), 'bgpPeers[0].password');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ password: 'has space' })] })), 'bgpPeers[0].password');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ password: 'x'.repeat(81) })] })), 'bgpPeers[0].password');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ password: 'é' })] })), 'bgpPeers[0].password');
  rejectsField(() => renderBirdConfig(edge({ logFile: '/tmp/x"; router id 1.1.1.1; log "' })), 'logFile');
  rejectsField(() => renderBirdConfig(edge({ logFile: '/var/../etc/passwd' })), 'logFile');
  rejectsField(() => renderBirdConfig(edge({ directInterfaces: ['eth0", "x'] })), 'directInterfaces[0]');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ interface: 'eth*' })] })), 'bgpPeers[0].interface');
  rejectsField(() => renderBirdConfig(edge({ routerId: '100.64.0.2; debug' })), 'routerId');
});

test('numbers and shapes: ASN range, timers, family of each list, host bits, duplicates', () => {
  rejectsField(() => renderBirdConfig(edge({ asn: 0 })), 'asn');
  rejectsField(() => renderBirdConfig(edge({ asn: 4294967296 })), 'asn');
  assert.match(renderBirdConfig(edge({ asn: 4294967295 })), /local as 4294967295;/);
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ remoteAs: 1.5 })] })), 'bgpPeers[0].remoteAs');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ holdTime: 2 })] })), 'bgpPeers[0].holdTime');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ holdTime: 9, keepaliveTime: 5 })] })), 'bgpPeers[0].keepaliveTime', /half/);
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ multihop: 1 })] })), 'bgpPeers[0].multihop');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ multihop: 2, bfd: true })] })), 'bgpPeers[0].localAddress', /multihop session with BFD/);
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ multihop: 2, bfd: false, interface: 'eth0' })] })), 'bgpPeers[0].interface', /multihop/);
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ errorWaitTime: { min: 10, max: 5 } })] })), 'bgpPeers[0].errorWaitTime.max');
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ export: ['2001:db8::/32'] })] })), 'bgpPeers[0].export[0]', /IPv6 but this session carries IPv4/);
  rejectsField(() => renderBirdConfig(edge({ bgpPeers: [peer({ localAddress: '2001:db8::1' })] })), 'bgpPeers[0].localAddress');
  rejectsField(() => renderBirdConfig(edge({ staticRoutes: [{ prefix: '203.0.113.1/24' }] })), 'staticRoutes[0].prefix', /host bits/);
  rejectsField(() => renderBirdConfig(edge({ staticRoutes: [{ prefix: '203.0.113.0/24' }, { prefix: '203.0.113.0/24' }] })), 'staticRoutes[1].prefix', /twice/);
  rejectsField(() => renderBirdConfig(edge({ staticRoutes: [{ prefix: '203.0.113.0/24', type: 'unicast' as 'blackhole' }] })), 'staticRoutes[0].type');
  rejectsField(() => renderBirdConfig(edge({ kernel: { export: 'some' as 'all', mergePaths: true } })), 'kernel.export');
  rejectsField(() => renderBirdConfig(edge({ kernel: { export: 'all', mergePaths: true, table: 255 } })), 'kernel.table');
  rejectsField(() => renderBirdConfig(edge({ bfd: { intervalMs: 0 } })), 'bfd.intervalMs');
  rejectsField(() => renderBirdConfig(edge({ routerId: '0.0.0.0' })), 'routerId');
  rejectsField(() => renderBirdConfig(edge({ routerId: '2001:db8::1' })), 'routerId');
});

test('bird -p accepts the rendered configs (edge, router, IPv6, every option)', async () => {
  const specs: BirdConfigSpec[] = [
    edge(),
    edge({ staticRoutes: [], bgpPeers: [peer({ export: [] })] }),
    edge({
      logFile: join(dir, 'bird.log'),
      deviceScanTime: 5,
      directInterfaces: ['lo', 'veth*'],
      bfd: { intervalMs: 100, multiplier: 5 },
      staticRoutes: [{ prefix: '203.0.113.0/24' }, { prefix: '2001:db8:1::/48', type: 'prohibit' }],
      bgpPeers: [
        peer({ password: '!#$%&()*+,-./:;<=>?@[]^_`{|}~', passive: true, nextHopSelf: true, addPaths: 'tx', connectDelayTime: 1, connectRetryTime: 2, errorWaitTime: { min: 1, max: 10 } }),
        peer({ name: 'v6', neighbor: '2001:db8:ffff::1', localAddress: '2001:db8:ffff::2', multihop: 3, import: 'all', export: ['2001:db8:1::/48'], bfd: true }),
        peer({ name: 'direct_v6', neighbor: '2001:db8:fffe::1', interface: 'eth0', import: 'all', export: 'none', bfd: false }),
      ],
    }),
    {
      routerId: '100.64.0.1',
      asn: 65000,
      kernel: { export: 'all', mergePaths: true, learn: true, scanTime: 30, table: 4242 },
      staticRoutes: [],
      bgpPeers: [peer({ name: 'e1', neighbor: '100.64.0.2', remoteAs: 65001, import: 'all', export: 'all', addPaths: 'on' })],
    },
  ];
  for (const s of specs) await checkBirdConfig(s, dir);
  assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.conf') || f.endsWith('.new')), [], 'the check leaves no files behind');
});

test('bird -p refusals surface as BirdError("config") with BIRD\'s line; a refused spec leaves the old file', async () => {
  const path = join(dir, 'keep.conf');
  const good = await writeBirdConfig(path, edge());
  assert.equal((await stat(path)).mode & 0o777, 0o600, 'configs may hold passwords: 0600');
  await assert.rejects(writeBirdConfig(path, edge({ bgpPeers: [peer({ name: 'ospf' })] })), KernelInputError);
  assert.equal(await readFile(path, 'utf8'), good);
  await writeFile(join(dir, 'bad.conf'), 'router id 1.1.1.1;\nprotocol bgp x { local as 1; neighbor 10.0.0.1 as 2; hold time 1; }\n');
  await assert.rejects(validateBirdConfigFile(join(dir, 'bad.conf')), (e: unknown) => {
    assert.ok(e instanceof BirdError, String(e));
    assert.equal(e.kind, 'config');
    assert.match(e.message, /bad\.conf:2:\d+ Hold time must be in range/);
    return true;
  });
});

test('the reserved-word list matches the installed BIRD: a sample is refused by bird -p, our peer names are not', async () => {
  const words = [...BIRD_RESERVED_WORDS];
  const sample = ['router', 'neighbor', 'label', 'md5', 'first', ...fc.sample(fc.constantFrom(...words), { numRuns: 10, seed: 42 })];
  const conf = (name: string) => `router id 1.1.1.1;\nprotocol bgp ${name} { local as 65001; neighbor 100.64.1.1 as 1; ipv4 { import none; export none; }; }\n`;
  for (const w of sample) {
    await writeFile(join(dir, 'kw.conf'), conf(w));
    await assert.rejects(validateBirdConfigFile(join(dir, 'kw.conf')), BirdError, `bird -p should refuse "${w}"`);
  }
  for (const ok of ['peer_100_64_0_1', 'peer_2001_db8__1', 'e1', 'edge_3']) {
    await writeFile(join(dir, 'kw.conf'), conf(ok));
    await validateBirdConfigFile(join(dir, 'kw.conf'));
  }
});

test('property: any valid spec renders to a config bird -p accepts', async () => {
  const octet = fc.integer({ min: 1, max: 254 });
  const v4net = fc.tuple(fc.constantFrom(198, 203), octet, octet, fc.integer({ min: 16, max: 32 })).map(([a, b, c, len]) => {
    const n = ((a << 24) | (b << 16) | (c << 8)) >>> 0;
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    const m = (n & mask) >>> 0;
    return `${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}/${len}`;
  });
  const password = fc.stringMatching(/^[!#-\[\]-~]{1,80}$/);
  const peerArb = fc.record({
    neighborHost: octet,
    remoteAs: fc.integer({ min: 1, max: 4294967295 }),
    bfd: fc.boolean(),
    hold: fc.integer({ min: 3, max: 65535 }),
    password: fc.option(password, { nil: undefined }),
    passive: fc.boolean(),
    exp: fc.array(v4net, { maxLength: 5 }),
    multihop: fc.option(fc.integer({ min: 2, max: 255 }), { nil: undefined }),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(peerArb, { minLength: 0, maxLength: 3 }), fc.array(v4net, { maxLength: 6 }), fc.boolean(), async (peers, routes, merge) => {
      const spec: BirdConfigSpec = {
        routerId: '100.64.0.2',
        asn: 65001,
        kernel: { export: merge ? 'all' : 'none', mergePaths: merge },
        staticRoutes: [...new Set(routes)].map((prefix) => ({ prefix })),
        bgpPeers: peers
          .filter((p, i) => peers.findIndex((q) => q.neighborHost === p.neighborHost) === i)
          .map((p, i) => ({
            name: `p${i}`,
            neighbor: `100.64.1.${p.neighborHost}`,
            remoteAs: p.remoteAs,
            bfd: p.bfd,
            holdTime: p.hold,
            keepaliveTime: Math.max(1, Math.floor(p.hold / 3)),
            ...(p.password !== undefined ? { password: p.password } : {}),
            ...(p.multihop !== undefined ? { multihop: p.multihop, localAddress: '100.64.1.255' } : {}),
            passive: p.passive,
            import: 'none' as const,
            export: p.exp,
          })),
      };
      await checkBirdConfig(spec, dir);
    }),
    { numRuns: 40 },
  );
});
