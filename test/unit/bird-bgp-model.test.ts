// The BGP peer schema of the operator settings (src/model/bgp.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBgpPeerInput, parseBgpPeersInput } from '../../src/model/bgp.js';
import { ValidationError } from '../../src/model/errors.js';

function rejects(input: unknown, field: string, reason?: RegExp, list = false) {
  assert.throws(
    () => (list ? parseBgpPeersInput(input) : parseBgpPeerInput(input, 'bgp_peers[0]')),
    (e: unknown) => {
      assert.ok(e instanceof ValidationError, String(e));
      assert.equal(e.field, field);
      if (reason) assert.match(e.reason, reason);
      return true;
    },
  );
}

test('defaults are filled in and the address is normalised', () => {
  assert.deepEqual(parseBgpPeerInput({ address: '2001:DB8:0::1', asn: 65000 }), {
    address: '2001:db8::1',
    asn: 65000,
    bfd: false,
    hold_time: 90,
    keepalive: 30,
    passive: false,
  });
  assert.deepEqual(
    parseBgpPeerInput({
      address: '198.51.100.1',
      asn: 4294967295,
      password: 'S3cr!t#{;}',
      bfd: true,
      hold_time: 9,
      keepalive: 3,
      multihop: 2,
      local_address: '198.51.100.2',
      passive: true,
    }),
    {
      address: '198.51.100.1',
      asn: 4294967295,
      password: 'S3cr!t#{;}',
      bfd: true,
      hold_time: 9,
      keepalive: 3,
      multihop: 2,
      local_address: '198.51.100.2',
      passive: true,
    },
  );
});

test('address: an IP a session can be opened to', () => {
  rejects({ address: 'router.example', asn: 1 }, 'bgp_peers[0].address', /not an IPv4 or IPv6 address/);
  rejects({ address: '10.0.0.1/32', asn: 1 }, 'bgp_peers[0].address');
  rejects({ address: '127.0.0.1', asn: 1 }, 'bgp_peers[0].address', /loopback/);
  rejects({ address: '0.0.0.0', asn: 1 }, 'bgp_peers[0].address');
  rejects({ address: '224.0.0.5', asn: 1 }, 'bgp_peers[0].address', /multicast/);
  rejects({ address: 'fe80::1', asn: 1 }, 'bgp_peers[0].address', /link-local/);
  rejects({ address: '010.0.0.1', asn: 1 }, 'bgp_peers[0].address');
  rejects({ address: '198.51.100.1', asn: 1, local_address: '2001:db8::1' }, 'bgp_peers[0].local_address', /family/);
});

test('asn 1–4294967295, timers, multihop range, unknown fields', () => {
  rejects({ address: '198.51.100.1', asn: 0 }, 'bgp_peers[0].asn', /at least 1/);
  rejects({ address: '198.51.100.1', asn: 4294967296 }, 'bgp_peers[0].asn', /at most 4294967295/);
  rejects({ address: '198.51.100.1', asn: '65000' }, 'bgp_peers[0].asn');
  rejects({ address: '198.51.100.1', asn: 65000, hold_time: 2 }, 'bgp_peers[0].hold_time');
  rejects({ address: '198.51.100.1', asn: 65000, hold_time: 0 }, 'bgp_peers[0].hold_time');
  rejects({ address: '198.51.100.1', asn: 65000, hold_time: 9, keepalive: 5 }, 'bgp_peers[0].keepalive', /half the hold time/);
  rejects({ address: '198.51.100.1', asn: 65000, multihop: 1 }, 'bgp_peers[0].multihop');
  rejects({ address: '198.51.100.1', asn: 65000, multihop: 2, bfd: true }, 'bgp_peers[0].local_address', /multihop session with BFD/);
  rejects({ address: '198.51.100.1', asn: 65000, bfd: 'yes' }, 'bgp_peers[0].bfd');
  rejects({ address: '198.51.100.1', asn: 65000, name: 'x' }, 'bgp_peers[0].name', /not a known field/);
});

test('password: a restricted charset that cannot end or escape a BIRD string', () => {
  for (const bad of ['a"b', 'back\\slash', 'with space', '', 'x'.repeat(81), 'tab\t', 'é', 'new\nline']) {
    rejects({ address: '198.51.100.1', asn: 65000, password: bad }, 'bgp_peers[0].password');
  }
  assert.equal(parseBgpPeerInput({ address: '198.51.100.1', asn: 65000, password: "!#$%&'()*+,-./:;<=>?@[]^_`{|}~" }).password, "!#$%&'()*+,-./:;<=>?@[]^_`{|}~");
});

test('a list: one session per router address', () => {
  assert.deepEqual(parseBgpPeersInput([]), []);
  rejects([{ address: '198.51.100.1', asn: 1 }, { address: '198.51.100.1', asn: 2 }], 'bgp_peers[1].address', /already peer 0/, true);
  rejects([{ address: '2001:db8::1', asn: 1 }, { address: '2001:DB8::0:1', asn: 2 }], 'bgp_peers[1].address', /already peer 0/, true);
  rejects({ address: '198.51.100.1' }, 'bgp_peers', /list/, true);
});
