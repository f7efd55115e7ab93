// The control-socket reply framing and the `show` parsers, on replies captured from BIRD 2.0.12 on this machine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BirdReplyParser, parseBirdProtocols, parseBirdRoutes, parseBirdStatus, type BirdReply } from '../../src/kernel/bird.js';

const GREETING = '0001 BIRD 2.0.12 ready.\n';

const STATUS =
  '1000-BIRD 2.0.12\n1011-Router ID is 100.64.0.1\n Hostname is vm\n Current server time is 2026-11-22 19:31:55.938\n' +
  ' Last reboot on 2026-11-22 19:31:51.887\n Last reconfiguration on 2026-11-22 19:31:51.887\n0013 Daemon is up and running\n';

const PROTOCOLS =
  '2002-Name       Proto      Table      State  Since         Info\n' +
  '1002-device1    Device     ---        up     2026-11-22T19:31:51  \n' +
  ' static4    Static     master4    up     2026-11-22T19:31:51  \n' +
  ' kernel4    Kernel     master4    up     2026-11-22T19:31:51  \n' +
  ' peer_a     BGP        ---        start  2026-11-22T19:31:51  Active        Socket: Connection closed\n' +
  ' e1         BGP        ---        up     2026-11-22T19:36:18  Established   \n' +
  '0000 \n';

const PROTOCOLS_ALL =
  '2002-Name       Proto      Table      State  Since         Info\n' +
  '1002-e1         BGP        ---        up     2026-11-22T19:36:18  Established   \n' +
  '1006-  BGP state:          Established\n' +
  '     Neighbor address: 100.64.0.2\n     Neighbor AS:      65001\n     Local AS:         65000\n     Neighbor ID:      100.64.0.2\n' +
  '     Local capabilities\n       Multiprotocol\n         AF announced: ipv4\n       Route refresh\n' +
  '     Session:          external AS4\n     Source address:   100.64.0.1\n     Hold timer:       4.980/9\n     Keepalive timer:  2.077/3\n' +
  '   Channel ipv4\n     State:          UP\n     Table:          master4\n     Preference:     100\n     Input filter:   ACCEPT\n' +
  '     Output filter:  REJECT\n     Routes:         2 imported, 0 exported, 2 preferred\n' +
  '     Route change stats:     received   rejected   filtered    ignored   accepted\n' +
  '       Import updates:              2          0          0          0          2\n     BGP Next hop:   100.64.0.1\n \n' +
  '1002-e2         BGP        ---        start  2026-11-22T19:36:30  Connect       Received: Administrative shutdown\n' +
  '1006-  BGP state:          Connect\n     Neighbor address: 100.64.0.6\n     Neighbor AS:      65001\n     Local AS:         65000\n' +
  '     Last error:       Received: Administrative shutdown\n' +
  '   Channel ipv4\n     State:          DOWN\n     Table:          master4\n \n' +
  '1002-kernel4    Kernel     master4    up     2026-11-22T19:36:17  \n' +
  '1006-  Channel ipv4\n     State:          UP\n     Routes:         0 imported, 2 exported, 0 preferred\n \n' +
  '0000 \n';

const ROUTES =
  '1007-Table master4:\n' +
  ' 192.0.2.10/32        unicast [e1 2026-11-22T19:36:18] * (100) [AS65001i]\n' +
  ' \tvia 100.64.0.2 on r-e1\n' +
  '                      unicast [e2 2026-11-22T19:36:18] (100) [AS65001i]\n' +
  ' \tvia 100.64.0.6 on r-e2\n' +
  ' 203.0.113.0/24       blackhole [static4 19:31:51.887] * (200)\n' +
  ' 198.51.100.0/24      unicast [kernel4 19:31:51.887] * (10)\n' +
  ' \tvia 100.64.0.2 on r-e1 weight 1\n \tvia 100.64.0.6 on r-e2 weight 3\n' +
  ' 100.64.0.0/30        unicast [direct1 19:31:51.887] * (240)\n \tdev r-e1\n' +
  '1007-Table master6:\n' +
  ' 2001:db8::/32        unicast [p6 2026-11-22T19:36:18 from 2001:db8:ffff::9] * (100/?) [AS65009?]\n \tvia 2001:db8:ffff::1 on eth0\n' +
  '0000 \n';

function parseAll(text: string): BirdReply[] {
  const p = new BirdReplyParser();
  const out: BirdReply[] = [];
  let r = p.push(text);
  while (r) {
    out.push(r);
    r = p.push('');
  }
  assert.equal(p.pending, '');
  return out;
}

test('reply framing: greeting, then one reply per command ending at the first "DDDD " line', () => {
  const [greeting, status, protocols] = parseAll(GREETING + STATUS + PROTOCOLS);
  assert.equal(greeting!.code, 1);
  assert.equal(status!.code, 13);
  assert.equal(status!.message, 'Daemon is up and running');
  assert.deepEqual(status!.lines.slice(0, 3), [
    { code: 1000, text: 'BIRD 2.0.12' },
    { code: 1011, text: 'Router ID is 100.64.0.1' },
    { code: 1011, text: 'Hostname is vm' },
  ]);
  assert.equal(protocols!.code, 0);
});

test('reply framing is independent of how the bytes arrive (any chunking)', () => {
  const text = GREETING + STATUS + PROTOCOLS_ALL + ROUTES + '9001 syntax error, unexpected CF_SYM_UNDEFINED\n';
  const whole = parseAll(text);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 30 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const p = new BirdReplyParser();
      const got: BirdReply[] = [];
      let from = 0;
      for (const at of [...points, text.length]) {
        let r = p.push(text.slice(from, at));
        while (r) {
          got.push(r);
          r = p.push('');
        }
        from = at;
      }
      assert.deepEqual(got, whole);
    }),
  );
  assert.equal(whole.at(-1)!.code, 9001);
});

test('show status', () => {
  const [, reply] = parseAll(GREETING + STATUS);
  assert.deepEqual(parseBirdStatus(reply!), {
    version: '2.0.12',
    routerId: '100.64.0.1',
    serverTime: '2026-11-22 19:31:55.938',
    lastReboot: '2026-11-22 19:31:51.887',
    lastReconfiguration: '2026-11-22 19:31:51.887',
    state: 'up',
    message: 'Daemon is up and running',
  });
  const [shutting] = parseAll('1000-BIRD 2.0.12\n1011-Router ID is 1.1.1.1\n0013 Shutdown in progress\n');
  assert.equal(parseBirdStatus(shutting!).state, 'shutting-down');
});

test('show protocols: columns, BGP state from Info, established flag', () => {
  const [reply] = parseAll(PROTOCOLS);
  const ps = parseBirdProtocols(reply!);
  assert.deepEqual(
    ps.map((p) => [p.name, p.proto, p.table, p.state, p.since]),
    [
      ['device1', 'Device', '---', 'up', '2026-11-22T19:31:51'],
      ['static4', 'Static', 'master4', 'up', '2026-11-22T19:31:51'],
      ['kernel4', 'Kernel', 'master4', 'up', '2026-11-22T19:31:51'],
      ['peer_a', 'BGP', '---', 'start', '2026-11-22T19:31:51'],
      ['e1', 'BGP', '---', 'up', '2026-11-22T19:36:18'],
    ],
  );
  assert.equal(ps[3]!.bgpState, 'Active');
  assert.equal(ps[3]!.info, 'Active        Socket: Connection closed');
  assert.equal(ps[3]!.established, false);
  assert.equal(ps[4]!.bgpState, 'Established');
  assert.equal(ps[4]!.established, true);
  assert.equal(ps[0]!.bgpState, undefined);
});

test('show protocols all: neighbour, last error, channel route counts', () => {
  const [reply] = parseAll(PROTOCOLS_ALL);
  const [e1, e2, k] = parseBirdProtocols(reply!);
  assert.equal(e1!.neighborAddress, '100.64.0.2');
  assert.equal(e1!.neighborAs, 65001);
  assert.equal(e1!.localAs, 65000);
  assert.deepEqual(e1!.channels, [{ name: 'ipv4', state: 'UP', imported: 2, exported: 0, preferred: 2 }]);
  assert.equal(e2!.bgpState, 'Connect');
  assert.equal(e2!.lastError, 'Received: Administrative shutdown');
  assert.equal(e2!.channels![0]!.state, 'DOWN');
  assert.deepEqual(k!.channels, [{ name: 'ipv4', state: 'UP', imported: 0, exported: 2, preferred: 0 }]);
});

test('show route: alternatives of one network, nexthops with weights, device routes, tables, from', () => {
  const [reply] = parseAll(ROUTES);
  const rs = parseBirdRoutes(reply!);
  assert.deepEqual(rs[0], {
    table: 'master4',
    network: '192.0.2.10/32',
    type: 'unicast',
    protocol: 'e1',
    since: '2026-11-22T19:36:18',
    primary: true,
    preference: 100,
    asPath: 'AS65001i',
    nexthops: [{ via: '100.64.0.2', dev: 'r-e1' }],
  });
  assert.equal(rs[1]!.network, '192.0.2.10/32', 'an alternative keeps the network of the line above');
  assert.equal(rs[1]!.protocol, 'e2');
  assert.equal(rs[1]!.primary, false);
  assert.deepEqual(rs[2], {
    table: 'master4',
    network: '203.0.113.0/24',
    type: 'blackhole',
    protocol: 'static4',
    since: '19:31:51.887',
    primary: true,
    preference: 200,
    nexthops: [],
  });
  assert.deepEqual(rs[3]!.nexthops, [
    { via: '100.64.0.2', dev: 'r-e1', weight: 1 },
    { via: '100.64.0.6', dev: 'r-e2', weight: 3 },
  ]);
  assert.deepEqual(rs[4]!.nexthops, [{ dev: 'r-e1' }]);
  assert.equal(rs[5]!.table, 'master6');
  assert.equal(rs[5]!.from, '2001:db8:ffff::9');
  assert.equal(rs[5]!.preference, 100);
  assert.equal(rs.length, 6);
});
