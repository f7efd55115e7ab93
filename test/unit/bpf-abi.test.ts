/**
 * The TS twin of bpf/opentransit_abi.h: the committed generated file must be what the generator makes of the header
 * today (CI fails on a stale file), and every layout the generator computed must be the C compiler's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbiParseError, emitTs, layoutCheckProgram, parseAbi } from '../../src/kernel/bpf/abigen.js';
import { abiGeneratedPath, abiHeaderPath } from '../../src/kernel/bpf/paths.js';
import { LpmKey, MAPS, REASON_VERDICT, Reason, Rule, RuleSet, Tunnel, TunnelKey, Verdict } from '../../src/kernel/bpf/abi.generated.js';
import { KernelInputError } from '../../src/kernel/exec.js';

const header = readFileSync(abiHeaderPath(), 'utf8');

test('abi.generated.ts is up to date with bpf/opentransit_abi.h (run `make generate`)', () => {
  const fresh = emitTs(parseAbi(header));
  const committed = readFileSync(abiGeneratedPath(), 'utf8');
  assert.ok(fresh === committed, 'src/kernel/bpf/abi.generated.ts is stale: run `make generate` and commit the result');
});

test('clang agrees with every size, offset, enum value and constant the generator computed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ot-abi-'));
  try {
    const file = join(dir, 'check.c');
    writeFileSync(file, layoutCheckProgram(parseAbi(header), abiHeaderPath()));
    const multiarch = execFileSync('cc', ['-print-multiarch'], { encoding: 'utf8' }).trim();
    // The BPF target is what the data plane is compiled for; the host compiler is what the addon uses.
    execFileSync('clang', ['-target', 'bpf', '-fsyntax-only', `-I/usr/include/${multiarch}`, file], { stdio: 'pipe' });
    execFileSync('cc', ['-fsyntax-only', file], { stdio: 'pipe' });
    // The check is able to fail: a wrong expectation must not compile.
    const wrong = readFileSync(file, 'utf8').replace('CHECK(sizeof(struct ot_lpm_key) == 20);', 'CHECK(sizeof(struct ot_lpm_key) == 24);');
    writeFileSync(file, wrong);
    assert.throws(() => execFileSync('clang', ['-target', 'bpf', '-fsyntax-only', `-I/usr/include/${multiarch}`, file], { stdio: 'pipe' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const wrap = (body: string) =>
  `#ifndef G\n#define G\nenum ot_verdict { OT_VERDICT_PASS = 0, };\nenum ot_reason { OT_REASON_PASS = 0, };\n#define OT_REASON_SLOTS 4\n${body}\n#endif\n`;

test('the generator refuses what its grammar does not cover, naming the line', () => {
  const cases: [string, RegExp][] = [
    ['struct ot_a { __u8 a; __u32 b; };', /:6: implicit padding before ot_a\.b \(offset 1, alignment 4\)/],
    ['struct ot_a { __u32 b; __u8 a; };', /needs 3 bytes of explicit tail padding/],
    ['struct ot_a { int b; };', /type int is not one of/],
    ['struct ot_a { struct ot_b x; };', /struct ot_b is not declared above/],
    ['#define OT_X', /needs a value/],
    ['#define OT_X (OT_Y + 1)', /OT_Y is not a constant declared above/],
    ['#include <x.h>', /#include is not part of the grammar/],
    ['enum ot_e { OT_E_A, };', /needs an explicit value/],
    ['enum ot_e { OT_E_A = 1, OT_E_B = 1, };', /repeats the value 1/],
    ['enum ot_e { OTHER = 1, };', /must start with OT_E_/],
    ['OT_MAP(ot_this_name_is_too_long, BPF_MAP_TYPE_HASH, __u32, __u32, 1, 0)', /at most 15 characters/],
    ['OT_MAP(ot_m, BPF_MAP_TYPE_LPM_TRIE, __u32, __u32, 1, 0)', /LPM tries need BPF_F_NO_PREALLOC/],
    ['OT_MAP(ot_m, BPF_MAP_TYPE_FOO, __u32, __u32, 1, 0)', /map type BPF_MAP_TYPE_FOO is not one of/],
    ['struct ot_s { __u32 a; };\nOT_RINGBUF(ot_r, struct ot_s, 5000)', /must be a power of two/],
    ['int x;', /expected #define, enum, struct, OT_MAP or OT_RINGBUF, found 'int'/],
  ];
  for (const [body, message] of cases) {
    assert.throws(() => parseAbi(wrap(body)), (e: unknown) => e instanceof AbiParseError && message.test(e.message), body);
  }
  assert.throws(() => parseAbi('#ifndef G\n#define G\nenum ot_verdict { OT_VERDICT_PASS = 0, };\nenum ot_reason { OT_REASON_OTHER = 0, };\n#define OT_REASON_SLOTS 1\n#endif\n'), /must start with a verdict name/);
});

test('every reason maps to the verdict its name starts with', () => {
  assert.equal(REASON_VERDICT[Reason.DROP_GRE_SPOOFED], Verdict.DROP);
  assert.equal(REASON_VERDICT[Reason.REDIRECT_GRE], Verdict.REDIRECT);
  assert.equal(REASON_VERDICT[Reason.PASS_NON_IP], Verdict.PASS);
  assert.equal(REASON_VERDICT[Reason.ENCAP_GRE], Verdict.ENCAP);
});

test('codecs write the C layout and read it back', () => {
  const key = LpmKey.encode({ prefixlen: 120, addr: Buffer.from('00000000000000000000ffffcb007100', 'hex') });
  assert.equal(key.toString('hex'), '78000000' + '00000000000000000000ffffcb007100');
  assert.deepEqual(LpmKey.decode(key), { prefixlen: 120, addr: Buffer.from('00000000000000000000ffffcb007100', 'hex') });

  const t = { local: 0xc0000201, remote: 0xc6336401, account: 7, ttl: 64, flags: 1, host_mac: Buffer.from('02aabbccddee', 'hex') };
  const tb = Tunnel.encode(t);
  assert.equal(tb.length, Tunnel.size);
  assert.equal(tb.subarray(0, 8).toString('hex'), 'c0000201c6336401', '__be32 fields are network order');
  assert.deepEqual(Tunnel.decode(tb), t);

  // Padding is zeroed even in a reused buffer: the kernel compares keys byte by byte.
  const dirty = Buffer.alloc(TunnelKey.size, 0xff);
  TunnelKey.encode({ netns_cookie: 5n, mac: Buffer.from('024f00000001', 'hex') }, dirty);
  assert.equal(dirty.toString('hex'), '0500000000000000' + '024f00000001' + '0000');

  const rule: Rule = {
    expires_ns: 0n, slot: 3, rate_pps: 0, burst: 0, sport_min: 0, sport_max: 65535, dport_min: 53, dport_max: 53,
    len_min: 0, len_max: 65535, proto: 17, tcp_flags_mask: 0, tcp_flags_value: 0, ttl_min: 0, ttl_max: 255, action: 1,
  };
  const set = RuleSet.encode({ count: 1, rules: [rule] }, Buffer.alloc(RuleSet.size, 0xee));
  const back = RuleSet.decode(set);
  assert.deepEqual(back.rules[0], rule);
  assert.equal(back.rules[1]!.action, 0, 'missing rules are zeroed');
  assert.equal(MAPS.ot_mitigation.value.size, 328);
});

test('codecs reject bad values with the field path', () => {
  const bad = (fn: () => unknown, field: string) =>
    assert.throws(fn, (e: unknown) => e instanceof KernelInputError && e.field === field, field);
  bad(() => LpmKey.encode({ prefixlen: -1, addr: Buffer.alloc(16) }), 'ot_lpm_key.prefixlen');
  bad(() => LpmKey.encode({ prefixlen: 1, addr: Buffer.alloc(4) }), 'ot_lpm_key.addr');
  bad(() => TunnelKey.encode({ netns_cookie: 1 as unknown as bigint, mac: Buffer.alloc(6) }), 'ot_tunnel_key.netns_cookie');
  const rule = { ...RuleSet.decode(Buffer.alloc(RuleSet.size)).rules[0]!, dport_min: 70000 };
  bad(() => RuleSet.encode({ count: 1, rules: [rule] }), 'ot_rule_set.rules[0].dport_min');
  bad(() => RuleSet.encode({ count: 1, rules: new Array(9).fill(rule) }), 'ot_rule_set.rules');
  bad(() => LpmKey.encode(null as unknown as LpmKey), 'ot_lpm_key');
});
