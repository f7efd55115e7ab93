/**
 * Generates src/kernel/bpf/abi.generated.ts from bpf/opentransit_abi.h.
 *
 *   tsx src/kernel/bpf/abigen.ts bpf/opentransit_abi.h src/kernel/bpf/abi.generated.ts   (`make generate`)
 *
 * Why a parser of our own instead of asking the compiler (offsetof programs, BTF dumps): the TS side needs more
 * than layouts — constants, string names, enums, map specs and doc comments, which BTF does not carry. So the header
 * keeps to a small, strict grammar (documented at its top) that this file parses completely or refuses with a line
 * number; nothing is skipped silently. Layouts are computed with C's natural alignment, and the header must pad
 * explicitly (implicit padding is an error here), which makes the computation trivially the compiler's. That claim is
 * still checked: `layoutCheckProgram` emits a C file of _Static_asserts over every size, offset, enum and constant,
 * which test/unit/bpf-abi.test.ts compiles with clang for the BPF target.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

// --- model -----------------------------------------------------------------------------------------------------

export interface AbiConstant {
  name: string;
  value: bigint | string;
  doc: string;
}
export interface AbiEnum {
  tag: string;
  doc: string;
  members: { name: string; value: bigint; doc: string }[];
}
export interface AbiType {
  /** 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'be32' | 'struct' */
  kind: string;
  /** C spelling: `__u32`, `struct ot_rule`. */
  cType: string;
  size: number;
  align: number;
  /** For kind 'struct': the tag. */
  tag?: string;
}
export interface AbiField {
  name: string;
  type: AbiType;
  count?: number;
  offset: number;
  size: number;
  doc: string;
}
export interface AbiStruct {
  tag: string;
  doc: string;
  fields: AbiField[];
  size: number;
  align: number;
}
export interface AbiMap {
  name: string;
  typeName: string;
  type: number;
  key: AbiType;
  value: AbiType;
  maxEntries: number;
  flags: number;
  doc: string;
}
export interface AbiRingbuf {
  name: string;
  record: AbiType;
  bytes: number;
  doc: string;
}
export interface Abi {
  constants: AbiConstant[];
  enums: AbiEnum[];
  structs: AbiStruct[];
  maps: AbiMap[];
  ringbufs: AbiRingbuf[];
}

export class AbiParseError extends Error {
  override name = 'AbiParseError';
  constructor(line: number, message: string) {
    super(`opentransit_abi.h:${line}: ${message}`);
  }
}

const SCALARS: Record<string, { kind: string; size: number }> = {
  __u8: { kind: 'u8', size: 1 },
  __u16: { kind: 'u16', size: 2 },
  __u32: { kind: 'u32', size: 4 },
  __u64: { kind: 'u64', size: 8 },
  __be16: { kind: 'be16', size: 2 },
  __be32: { kind: 'be32', size: 4 },
};

/** The uapi values (stable kernel ABI) of the map types and flags the header may use. */
const MAP_TYPES: Record<string, number> = {
  BPF_MAP_TYPE_HASH: 1,
  BPF_MAP_TYPE_ARRAY: 2,
  BPF_MAP_TYPE_PERCPU_HASH: 5,
  BPF_MAP_TYPE_PERCPU_ARRAY: 6,
  BPF_MAP_TYPE_LPM_TRIE: 11,
  BPF_MAP_TYPE_DEVMAP: 14,
  BPF_MAP_TYPE_DEVMAP_HASH: 25,
  BPF_MAP_TYPE_RINGBUF: 27,
};
const MAP_FLAGS: Record<string, bigint> = { BPF_F_NO_PREALLOC: 1n };
const BPF_OBJ_NAME_LEN = 16;

// --- tokenizer -------------------------------------------------------------------------------------------------

interface Token {
  kind: 'ident' | 'num' | 'str' | 'punct' | 'directive';
  text: string;
  line: number;
  /** Comments between the previous token and this one that do not trail the previous token's line. */
  leading: string[];
  /** Comments after this token that start on this token's line. */
  trailing: string[];
  /** For directives: the tokens of the directive's line after `#word`. */
  args?: Token[];
}

function cleanComment(raw: string): string {
  const body = raw.startsWith('//') ? raw.slice(2) : raw.slice(2, -2);
  return body
    .split('\n')
    .map((l) => l.replace(/^\s*\*+(?!\/)/, '').trim())
    .filter((l) => l !== '' && l !== '*')
    .join(' ')
    .replace(/^\*+\s*/, '')
    .trim();
}

const PUNCT = ['<<', '{', '}', '[', ']', '(', ')', ';', ',', '=', '*', '+', '-', '|'];

function tokenize(src: string, firstLine = 1): Token[] {
  const tokens: Token[] = [];
  let pendingLeading: string[] = [];
  let line = firstLine;
  let i = 0;
  let atLineStart = true;
  const push = (t: Omit<Token, 'leading' | 'trailing'>) => {
    tokens.push({ ...t, leading: pendingLeading, trailing: [] });
    pendingLeading = [];
    atLineStart = false;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      i++;
      atLineStart = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (src.startsWith('/*', i) || src.startsWith('//', i)) {
      const block = src.startsWith('/*', i);
      const end = block ? src.indexOf('*/', i + 2) : src.indexOf('\n', i);
      if (block && end < 0) throw new AbiParseError(line, 'unterminated comment');
      const stop = block ? end + 2 : end < 0 ? src.length : end;
      const raw = src.slice(i, stop);
      const text = cleanComment(raw);
      const prev = tokens[tokens.length - 1];
      if (text !== '') {
        if (prev && prev.line === line && pendingLeading.length === 0) prev.trailing.push(text);
        else pendingLeading.push(text);
      }
      line += (raw.match(/\n/g) ?? []).length;
      i = stop;
      continue;
    }
    if (c === '#') {
      if (!atLineStart) throw new AbiParseError(line, "'#' must start a line");
      // A directive is the rest of the line; comments inside it are part of the line (a trailing doc).
      let j = i;
      let inComment = false;
      while (j < src.length) {
        if (!inComment && src.startsWith('/*', j)) {
          inComment = true;
          j += 2;
        } else if (inComment && src.startsWith('*/', j)) {
          inComment = false;
          j += 2;
        } else if (!inComment && src[j] === '\n') break;
        else if (src[j] === '\\' && src[j + 1] === '\n') throw new AbiParseError(line, 'line continuations are not part of the grammar');
        else j++;
      }
      const text = src.slice(i + 1, j);
      const m = /^([a-z]+)\b/.exec(text);
      if (!m || !['ifndef', 'define', 'endif'].includes(m[1]!))
        throw new AbiParseError(line, `#${m ? m[1] : text.trim()} is not part of the grammar`);
      const args = tokenize(text.slice(m[1]!.length), line);
      const trailing = args.flatMap((t) => [...t.leading, ...t.trailing]);
      const startLine = line;
      push({ kind: 'directive', text: m[1]!, line: startLine, args });
      tokens[tokens.length - 1]!.trailing.push(...trailing);
      line += (src.slice(i, j).match(/\n/g) ?? []).length;
      i = j;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i, i + 128));
    if (ident) {
      push({ kind: 'ident', text: ident[0], line });
      i += ident[0].length;
      continue;
    }
    const num = /^(0[xX][0-9a-fA-F]+|[0-9]+)([uU]?[lL]{0,2})\b/.exec(src.slice(i, i + 64));
    if (num) {
      push({ kind: 'num', text: num[1]!, line });
      i += num[0].length;
      continue;
    }
    if (c === '"') {
      const end = src.indexOf('"', i + 1);
      const s = end < 0 ? '' : src.slice(i + 1, end);
      if (end < 0 || s.includes('\n') || s.includes('\\')) throw new AbiParseError(line, 'strings are one line, without escapes');
      push({ kind: 'str', text: s, line });
      i = end + 1;
      continue;
    }
    const p = PUNCT.find((q) => src.startsWith(q, i));
    if (!p) throw new AbiParseError(line, `unexpected character ${JSON.stringify(c)}`);
    push({ kind: 'punct', text: p, line });
    i += p.length;
  }
  // Comments after the last token (e.g. the file's closing remarks) are dropped.
  return tokens;
}

// --- parser ----------------------------------------------------------------------------------------------------

class Cursor {
  i = 0;
  constructor(
    readonly tokens: Token[],
    readonly endLine: number,
  ) {}
  peek(): Token | undefined {
    return this.tokens[this.i];
  }
  line(): number {
    return this.peek()?.line ?? this.endLine;
  }
  next(what: string): Token {
    const t = this.tokens[this.i];
    if (!t) throw new AbiParseError(this.endLine, `expected ${what}, found the end`);
    this.i++;
    return t;
  }
  expect(text: string): Token {
    const t = this.next(`'${text}'`);
    if (t.text !== text || t.kind === 'str') throw new AbiParseError(t.line, `expected '${text}', found '${t.text}'`);
    return t;
  }
  ident(what: string): Token {
    const t = this.next(what);
    if (t.kind !== 'ident') throw new AbiParseError(t.line, `expected ${what}, found '${t.text}'`);
    return t;
  }
  accept(text: string): Token | undefined {
    const t = this.peek();
    if (t && t.kind === 'punct' && t.text === text) {
      this.i++;
      return t;
    }
    return undefined;
  }
  done(): boolean {
    return this.i >= this.tokens.length;
  }
}

const docOf = (...parts: string[][]): string => parts.flat().join(' ').trim();

class Parser {
  readonly abi: Abi = { constants: [], enums: [], structs: [], maps: [], ringbufs: [] };
  /** Every integer name known so far: constants and enumerators (for expressions). */
  private readonly values = new Map<string, bigint>();
  private readonly names = new Set<string>();

  constructor(private readonly src: string) {}

  parse(): Abi {
    const tokens = tokenize(this.src);
    const endLine = this.src.split('\n').length;
    const c = new Cursor(tokens, endLine);
    const ifndef = c.next('#ifndef');
    if (ifndef.kind !== 'directive' || ifndef.text !== 'ifndef' || ifndef.args?.length !== 1)
      throw new AbiParseError(ifndef.line, 'the header must start with an include guard (#ifndef GUARD)');
    const guard = ifndef.args[0]!.text;
    const def = c.next('#define');
    if (def.kind !== 'directive' || def.text !== 'define' || def.args?.length !== 1 || def.args[0]!.text !== guard)
      throw new AbiParseError(def.line, `expected #define ${guard}`);
    for (;;) {
      const t = c.peek();
      if (!t) throw new AbiParseError(endLine, 'missing #endif');
      if (t.kind === 'directive') {
        c.i++;
        if (t.text === 'endif') {
          if (!c.done()) throw new AbiParseError(c.line(), 'nothing may follow #endif');
          break;
        }
        if (t.text !== 'define') throw new AbiParseError(t.line, `#${t.text} is not part of the grammar`);
        this.define(t);
      } else if (t.kind === 'ident' && t.text === 'enum') this.enumDecl(c);
      else if (t.kind === 'ident' && t.text === 'struct') this.structDecl(c);
      else if (t.kind === 'ident' && t.text === 'OT_MAP') this.mapDecl(c);
      else if (t.kind === 'ident' && t.text === 'OT_RINGBUF') this.ringbufDecl(c);
      else throw new AbiParseError(t.line, `expected #define, enum, struct, OT_MAP or OT_RINGBUF, found '${t.text}'`);
    }
    this.semanticChecks(endLine);
    return this.abi;
  }

  private declare(name: string, line: number): void {
    if (this.names.has(name)) throw new AbiParseError(line, `${name} is declared twice`);
    this.names.add(name);
  }

  private define(t: Token): void {
    const args = t.args ?? [];
    const nameTok = args[0];
    if (!nameTok || nameTok.kind !== 'ident') throw new AbiParseError(t.line, '#define needs a name');
    const name = nameTok.text;
    if (!/^OT_[A-Z0-9_]+$/.test(name)) throw new AbiParseError(t.line, `constant ${name} must be named OT_[A-Z0-9_]+`);
    if (args.length === 1) throw new AbiParseError(t.line, `#define ${name} needs a value`);
    this.declare(name, t.line);
    const doc = docOf(t.leading, t.trailing);
    if (args.length === 2 && args[1]!.kind === 'str') {
      this.abi.constants.push({ name, value: args[1]!.text, doc });
      return;
    }
    const c = new Cursor(args.slice(1), t.line);
    const value = this.expr(c);
    if (!c.done()) throw new AbiParseError(t.line, `unexpected '${c.peek()!.text}' in the value of ${name}`);
    this.values.set(name, value);
    this.abi.constants.push({ name, value, doc });
  }

  /** expr := or; or := shift ('|' shift)*; shift := add ('<<' add)*; add := mul (('+'|'-') mul)*; mul := atom ('*' atom)* */
  private expr(c: Cursor): bigint {
    let v = this.shift(c);
    while (c.accept('|')) v |= this.shift(c);
    return v;
  }
  private shift(c: Cursor): bigint {
    let v = this.add(c);
    while (c.accept('<<')) v <<= this.add(c);
    return v;
  }
  private add(c: Cursor): bigint {
    let v = this.mul(c);
    for (;;) {
      if (c.accept('+')) v += this.mul(c);
      else if (c.accept('-')) v -= this.mul(c);
      else return v;
    }
  }
  private mul(c: Cursor): bigint {
    let v = this.atom(c);
    while (c.accept('*')) v *= this.atom(c);
    return v;
  }
  private atom(c: Cursor): bigint {
    const t = c.next('a number, a name or (');
    if (t.kind === 'num') return BigInt(t.text);
    if (t.kind === 'ident') {
      const v = this.values.get(t.text) ?? MAP_FLAGS[t.text];
      if (v === undefined) throw new AbiParseError(t.line, `${t.text} is not a constant declared above`);
      return v;
    }
    if (t.kind === 'punct' && t.text === '(') {
      const v = this.expr(c);
      c.expect(')');
      return v;
    }
    throw new AbiParseError(t.line, `unexpected '${t.text}' in an expression`);
  }

  private smallInt(c: Cursor, what: string, min: number, max: number): number {
    const line = c.line();
    const v = this.expr(c);
    if (v < BigInt(min) || v > BigInt(max)) throw new AbiParseError(line, `${what} must be in ${min}..${max}, is ${v}`);
    return Number(v);
  }

  private enumDecl(c: Cursor): void {
    const kw = c.expect('enum');
    const tagTok = c.ident('an enum tag');
    const tag = tagTok.text;
    if (!/^ot_[a-z0-9_]+$/.test(tag)) throw new AbiParseError(tagTok.line, `enum tag ${tag} must be named ot_[a-z0-9_]+`);
    this.declare(`enum ${tag}`, tagTok.line);
    const prefix = `${tag.toUpperCase()}_`;
    const e: AbiEnum = { tag, doc: docOf(kw.leading, c.expect('{').trailing), members: [] };
    const seen = new Set<bigint>();
    while (!c.accept('}')) {
      const m = c.ident('an enumerator');
      if (!m.text.startsWith(prefix) || m.text.length === prefix.length)
        throw new AbiParseError(m.line, `enumerator ${m.text} must start with ${prefix}`);
      this.declare(m.text, m.line);
      if (!c.accept('=')) throw new AbiParseError(m.line, `enumerator ${m.text} needs an explicit value`);
      const line = c.line();
      const value = this.expr(c);
      if (value < 0n || value > 0xffffffffn) throw new AbiParseError(line, `${m.text} must be in 0..2^32-1`);
      if (seen.has(value)) throw new AbiParseError(line, `${m.text} repeats the value ${value}`);
      seen.add(value);
      const comma = c.accept(',');
      const last = comma ?? c.tokens[c.i - 1]!;
      this.values.set(m.text, value);
      e.members.push({ name: m.text.slice(prefix.length), value, doc: docOf(m.leading, last.trailing) });
      if (!comma) {
        c.expect('}');
        break;
      }
    }
    c.expect(';');
    if (e.members.length === 0) throw new AbiParseError(tagTok.line, `enum ${tag} is empty`);
    this.abi.enums.push(e);
  }

  private typeRef(c: Cursor): AbiType {
    const t = c.ident('a type');
    if (t.text === 'struct') {
      const tag = c.ident('a struct tag');
      const s = this.abi.structs.find((x) => x.tag === tag.text);
      if (!s) throw new AbiParseError(tag.line, `struct ${tag.text} is not declared above`);
      return { kind: 'struct', cType: `struct ${s.tag}`, size: s.size, align: s.align, tag: s.tag };
    }
    const sc = SCALARS[t.text];
    if (!sc) throw new AbiParseError(t.line, `type ${t.text} is not one of ${Object.keys(SCALARS).join(' ')} or struct ot_…`);
    return { kind: sc.kind, cType: t.text, size: sc.size, align: sc.size };
  }

  private structDecl(c: Cursor): void {
    const kw = c.expect('struct');
    const tagTok = c.ident('a struct tag');
    const tag = tagTok.text;
    if (!/^ot_[a-z0-9_]+$/.test(tag)) throw new AbiParseError(tagTok.line, `struct tag ${tag} must be named ot_[a-z0-9_]+`);
    this.declare(`struct ${tag}`, tagTok.line);
    const open = c.expect('{');
    const s: AbiStruct = { tag, doc: docOf(kw.leading, open.trailing), fields: [], size: 0, align: 1 };
    const fieldNames = new Set<string>();
    while (!c.accept('}')) {
      const first = c.peek();
      const type = this.typeRef(c);
      const nameTok = c.ident('a field name');
      if (!/^_?[a-z][a-z0-9_]*$/.test(nameTok.text)) throw new AbiParseError(nameTok.line, `field ${nameTok.text} must be lower_snake_case`);
      if (fieldNames.has(nameTok.text)) throw new AbiParseError(nameTok.line, `field ${nameTok.text} is declared twice`);
      fieldNames.add(nameTok.text);
      let count: number | undefined;
      if (c.accept('[')) {
        count = this.smallInt(c, `the length of ${nameTok.text}`, 1, 1 << 20);
        c.expect(']');
      }
      const semi = c.expect(';');
      if (s.size % type.align !== 0)
        throw new AbiParseError(
          nameTok.line,
          `implicit padding before ${tag}.${nameTok.text} (offset ${s.size}, alignment ${type.align}): add an explicit _pad field`,
        );
      const size = type.size * (count ?? 1);
      const field: AbiField = { name: nameTok.text, type, offset: s.size, size, doc: docOf(first?.leading ?? [], semi.trailing) };
      if (count !== undefined) field.count = count;
      s.fields.push(field);
      s.size += size;
      s.align = Math.max(s.align, type.align);
    }
    c.expect(';');
    if (s.fields.length === 0) throw new AbiParseError(tagTok.line, `struct ${tag} is empty`);
    if (s.size % s.align !== 0)
      throw new AbiParseError(tagTok.line, `struct ${tag} needs ${s.align - (s.size % s.align)} bytes of explicit tail padding (size ${s.size}, alignment ${s.align})`);
    this.abi.structs.push(s);
  }

  private objName(c: Cursor, what: string): Token {
    const t = c.ident(what);
    if (t.text.length >= BPF_OBJ_NAME_LEN || !/^ot_[a-z0-9_]+$/.test(t.text))
      throw new AbiParseError(t.line, `${what} ${t.text} must match ot_[a-z0-9_]+ and be at most ${BPF_OBJ_NAME_LEN - 1} characters`);
    this.declare(`map ${t.text}`, t.line);
    return t;
  }

  private mapDecl(c: Cursor): void {
    const kw = c.expect('OT_MAP');
    c.expect('(');
    const name = this.objName(c, 'map name');
    c.expect(',');
    const typeTok = c.ident('a BPF_MAP_TYPE_…');
    const type = MAP_TYPES[typeTok.text];
    if (type === undefined) throw new AbiParseError(typeTok.line, `map type ${typeTok.text} is not one of ${Object.keys(MAP_TYPES).join(' ')}`);
    if (typeTok.text === 'BPF_MAP_TYPE_RINGBUF') throw new AbiParseError(typeTok.line, 'ring buffers are declared with OT_RINGBUF');
    c.expect(',');
    const key = this.typeRef(c);
    c.expect(',');
    const value = this.typeRef(c);
    c.expect(',');
    const maxEntries = this.smallInt(c, `max entries of ${name.text}`, 1, 0x7fffffff);
    c.expect(',');
    const flags = this.smallInt(c, `flags of ${name.text}`, 0, 0xffffffff);
    const close = c.expect(')');
    if (typeTok.text === 'BPF_MAP_TYPE_LPM_TRIE' && (flags & 1) === 0) throw new AbiParseError(typeTok.line, 'LPM tries need BPF_F_NO_PREALLOC');
    this.abi.maps.push({ name: name.text, typeName: typeTok.text, type, key, value, maxEntries, flags, doc: docOf(kw.leading, close.trailing) });
  }

  private ringbufDecl(c: Cursor): void {
    const kw = c.expect('OT_RINGBUF');
    c.expect('(');
    const name = this.objName(c, 'ring buffer name');
    c.expect(',');
    const record = this.typeRef(c);
    c.expect(',');
    const line = c.line();
    const bytes = this.smallInt(c, `size of ${name.text}`, 4096, 1 << 30);
    if ((bytes & (bytes - 1)) !== 0) throw new AbiParseError(line, `size of ${name.text} must be a power of two`);
    const close = c.expect(')');
    this.abi.ringbufs.push({ name: name.text, record, bytes, doc: docOf(kw.leading, close.trailing) });
  }

  /** The few rules that tie declarations together (the TS side relies on them). */
  private semanticChecks(endLine: number): void {
    const verdicts = this.abi.enums.find((e) => e.tag === 'ot_verdict');
    const reasons = this.abi.enums.find((e) => e.tag === 'ot_reason');
    if (!verdicts || !reasons) throw new AbiParseError(endLine, 'enum ot_verdict and enum ot_reason are required');
    for (const r of reasons.members) {
      if (!verdictOfReason(r.name, verdicts))
        throw new AbiParseError(endLine, `reason OT_REASON_${r.name} must start with a verdict name (${verdicts.members.map((v) => v.name).join(', ')})`);
    }
    const slots = this.values.get('OT_REASON_SLOTS');
    const maxReason = reasons.members.reduce((m, r) => (r.value > m ? r.value : m), 0n);
    if (slots === undefined || maxReason >= slots) throw new AbiParseError(endLine, 'OT_REASON_SLOTS must exceed every reason');
  }
}

function verdictOfReason(reason: string, verdicts: AbiEnum): AbiEnum['members'][number] | undefined {
  // Longest verdict name first, so a verdict that prefixes another cannot steal its reasons.
  const sorted = [...verdicts.members].sort((a, b) => b.name.length - a.name.length);
  return sorted.find((v) => reason === v.name || reason.startsWith(`${v.name}_`));
}

export function parseAbi(headerText: string): Abi {
  return new Parser(headerText).parse();
}

// --- TypeScript output -----------------------------------------------------------------------------------------

/** ot_rule_set → RuleSet; ot_lpm_key → LpmKey. */
export function tsName(tag: string): string {
  return tag
    .replace(/^ot_/, '')
    .split('_')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}

const SCALAR_CODEC: Record<string, string> = { u8: 'U8', u16: 'U16', u32: 'U32', u64: 'U64', be16: 'Be16', be32: 'Be32' };
const WRITER: Record<string, string> = { u8: 'wU8', u16: 'wU16', u32: 'wU32', u64: 'wU64', be16: 'wBe16', be32: 'wBe32' };
const READER: Record<string, string> = {
  u8: 'readUInt8',
  u16: 'readUInt16LE',
  u32: 'readUInt32LE',
  u64: 'readBigUInt64LE',
  be16: 'readUInt16BE',
  be32: 'readUInt32BE',
};

function codecRef(t: AbiType): string {
  return t.kind === 'struct' ? tsName(t.tag!) : SCALAR_CODEC[t.kind]!;
}
function tsValueType(t: AbiType): string {
  return t.kind === 'struct' ? tsName(t.tag!) : t.kind === 'u64' ? 'bigint' : 'number';
}
function fieldTsType(f: AbiField): string {
  if (f.count === undefined) return tsValueType(f.type);
  if (f.type.kind === 'u8') return 'Buffer'; // a Uint8Array with equals()/toString('hex'); decode returns copies
  return `${tsValueType(f.type)}[]`;
}

function jsdoc(doc: string, indent = ''): string {
  if (!doc) return '';
  return `${indent}/** ${doc.replace(/\*\//g, '* /')} */\n`;
}

function literal(v: bigint): string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? v.toString() : `${v}n`;
}

function emitStruct(s: AbiStruct): string {
  const name = tsName(s.tag);
  const visible = s.fields.filter((f) => !f.name.startsWith('_'));
  let out = jsdoc(s.doc);
  out += `export interface ${name} {\n`;
  for (const f of visible) out += `${jsdoc(f.doc, '  ')}  ${f.name}: ${fieldTsType(f)};\n`;
  out += '}\n';
  const enc: string[] = [];
  const dec: string[] = [];
  for (const f of s.fields) {
    const at = `off + ${f.offset}`;
    if (f.name.startsWith('_')) {
      enc.push(`buf.fill(0, ${at}, ${at} + ${f.size});`);
      continue;
    }
    const get = `o.${f.name}`;
    if (f.count === undefined) {
      if (f.type.kind === 'struct') {
        enc.push(`${tsName(f.type.tag!)}.encode(${get} as ${tsName(f.type.tag!)}, buf, ${at}, \`\${path}.${f.name}\`);`);
        dec.push(`${f.name}: ${tsName(f.type.tag!)}.decode(buf, ${at}),`);
      } else {
        enc.push(`${WRITER[f.type.kind]}(buf, ${at}, ${get}, path, '${f.name}');`);
        dec.push(`${f.name}: buf.${READER[f.type.kind]}(${at}),`);
      }
    } else if (f.type.kind === 'u8') {
      enc.push(`wBytes(buf, ${at}, ${get}, ${f.count}, path, '${f.name}');`);
      dec.push(`${f.name}: rBytes(buf, ${at}, ${f.count}),`);
    } else {
      const el = f.type.size;
      const write =
        f.type.kind === 'struct'
          ? `${tsName(f.type.tag!)}.encode(a[i] as ${tsName(f.type.tag!)}, buf, ${at} + i * ${el}, \`\${path}.${f.name}[\${i}]\`)`
          : `${WRITER[f.type.kind]}(buf, ${at} + i * ${el}, a[i], path, \`${f.name}[\${i}]\`)`;
      enc.push(
        `{\n      const a = checkArray(${get}, ${f.count}, path, '${f.name}');\n      for (let i = 0; i < a.length; i++) ${write};\n      buf.fill(0, ${at} + a.length * ${el}, ${at} + ${f.size});\n    }`,
      );
      const read = f.type.kind === 'struct' ? `${tsName(f.type.tag!)}.decode(buf, ${at} + i * ${el})` : `buf.${READER[f.type.kind]}(${at} + i * ${el})`;
      dec.push(`${f.name}: Array.from({ length: ${f.count} }, (_, i) => ${read}),`);
    }
  }
  const layout = s.fields
    .map((f) => {
      const t = f.type.kind === 'struct' ? f.type.tag! : f.type.kind;
      return `    { name: '${f.name}', offset: ${f.offset}, size: ${f.size}, type: '${t}'${f.count === undefined ? '' : `, count: ${f.count}`} },`;
    })
    .join('\n');
  out += `export const ${name}: StructCodec<${name}> = {\n`;
  out += `  cType: 'struct ${s.tag}',\n  size: ${s.size},\n  align: ${s.align},\n  fields: [\n${layout}\n  ],\n`;
  out += `  encode(v: ${name}, buf: Buffer = Buffer.alloc(${s.size}), off = 0, path = '${s.tag}'): Buffer {\n`;
  out += `    const o = checkObject(v, path);\n`;
  out += enc.map((l) => `    ${l}\n`).join('');
  out += `    return buf;\n  },\n`;
  out += `  decode(buf: Buffer, off = 0): ${name} {\n    return {\n${dec.map((l) => `      ${l}\n`).join('')}    };\n  },\n};\n`;
  return out;
}

function emitEnum(e: AbiEnum): string {
  const name = tsName(e.tag);
  let out = jsdoc(e.doc);
  out += `export const ${name} = {\n`;
  for (const m of e.members) out += `${jsdoc(m.doc, '  ')}  ${m.name}: ${literal(m.value)},\n`;
  out += `} as const;\nexport type ${name} = (typeof ${name})[keyof typeof ${name}];\n`;
  out += `/** The C name (without ${e.tag.toUpperCase()}_) of each ${name} value. */\n`;
  out += `export const ${name.toUpperCase()}_NAMES: Readonly<Record<${name}, string>> = {\n`;
  for (const m of e.members) out += `  ${literal(m.value)}: '${m.name}',\n`;
  out += '};\n';
  return out;
}

export function emitTs(abi: Abi, source = 'bpf/opentransit_abi.h'): string {
  let out = `// GENERATED from ${source} by src/kernel/bpf/abigen.ts — do not edit. Run \`make generate\`.\n`;
  out += `/* eslint-disable */\n`;
  out += `import {\n  type StructCodec,\n  type Codec,\n  U8, U16, U32, U64, Be16, Be32,\n  checkArray, checkObject, rBytes, wBytes, wU8, wU16, wU32, wU64, wBe16, wBe32,\n} from './abi-runtime.js';\n\n`;
  out += `// Unused-import guard: every codec and writer is referenced whatever the header declares.\n`;
  out += `void [U8, U16, U32, U64, Be16, Be32, checkArray, checkObject, rBytes, wBytes, wU8, wU16, wU32, wU64, wBe16, wBe32];\n\n`;
  out += '// --- constants ---\n';
  for (const k of abi.constants) {
    out += jsdoc(k.doc);
    out += typeof k.value === 'string' ? `export const ${k.name} = '${k.value}';\n` : `export const ${k.name} = ${literal(k.value)};\n`;
  }
  out += '\n// --- enums ---\n';
  for (const e of abi.enums) out += emitEnum(e) + '\n';
  const verdicts = abi.enums.find((e) => e.tag === 'ot_verdict')!;
  const reasons = abi.enums.find((e) => e.tag === 'ot_reason')!;
  out += `/** The verdict of each reason (its name starts with the verdict's). */\n`;
  out += `export const REASON_VERDICT: Readonly<Record<Reason, Verdict>> = {\n`;
  for (const r of reasons.members) out += `  ${literal(r.value)}: Verdict.${verdictOfReason(r.name, verdicts)!.name},\n`;
  out += '};\n\n// --- structs ---\n';
  for (const s of abi.structs) out += emitStruct(s) + '\n';
  out += '// --- maps ---\n';
  out += `export interface MapSpec<K, V> {\n  readonly name: string;\n  readonly type: number;\n  readonly typeName: string;\n  readonly key: Codec<K>;\n  readonly value: Codec<V>;\n  readonly maxEntries: number;\n  readonly flags: number;\n}\n`;
  out += `export interface RingbufSpec<R> {\n  readonly name: string;\n  readonly type: number;\n  readonly record: Codec<R>;\n  readonly bytes: number;\n}\n`;
  out += `export const MAPS = {\n`;
  for (const m of abi.maps) {
    out += jsdoc(m.doc, '  ');
    out += `  ${m.name}: { name: '${m.name}', type: ${m.type}, typeName: '${m.typeName}', key: ${codecRef(m.key)}, value: ${codecRef(m.value)}, maxEntries: ${m.maxEntries}, flags: ${m.flags} } as MapSpec<${tsValueType(m.key)}, ${tsValueType(m.value)}>,\n`;
  }
  out += '} as const;\n';
  out += `export const RINGBUFS = {\n`;
  for (const r of abi.ringbufs) {
    out += jsdoc(r.doc, '  ');
    out += `  ${r.name}: { name: '${r.name}', type: ${MAP_TYPES.BPF_MAP_TYPE_RINGBUF}, record: ${codecRef(r.record)}, bytes: ${r.bytes} } as RingbufSpec<${tsValueType(r.record)}>,\n`;
  }
  out += '} as const;\n';
  return out;
}

// --- layout check (C) ------------------------------------------------------------------------------------------

/**
 * A C translation unit that compiles only if every size, offset, alignment, enum value and integer constant the
 * generator computed is what the compiler computes. Compile with `clang -target bpf -fsyntax-only` (no root needed).
 */
export function layoutCheckProgram(abi: Abi, headerPath: string): string {
  const lines = [
    '/* Generated by src/kernel/bpf/abigen.ts layoutCheckProgram(): compiles only if the TS layouts are right. */',
    '#include <linux/types.h>',
    '#include <stddef.h>',
    '#define OT_MAP(name, type, key, value, max, flags)',
    '#define OT_RINGBUF(name, record, bytes)',
    '#define BPF_F_NO_PREALLOC 1',
    `#include "${headerPath}"`,
    '#define CHECK(cond) _Static_assert(cond, #cond)',
  ];
  for (const k of abi.constants) {
    if (typeof k.value === 'string') lines.push(`CHECK(sizeof(${k.name}) == ${Buffer.byteLength(k.value) + 1});`);
    else lines.push(`CHECK((${k.name}) == ${k.value}ULL);`);
  }
  for (const e of abi.enums) for (const m of e.members) lines.push(`CHECK(${e.tag.toUpperCase()}_${m.name} == ${m.value});`);
  for (const s of abi.structs) {
    lines.push(`CHECK(sizeof(struct ${s.tag}) == ${s.size});`, `CHECK(_Alignof(struct ${s.tag}) == ${s.align});`);
    for (const f of s.fields) {
      lines.push(`CHECK(offsetof(struct ${s.tag}, ${f.name}) == ${f.offset});`);
      lines.push(`CHECK(sizeof(((struct ${s.tag} *)0)->${f.name}) == ${f.size});`);
    }
  }
  return lines.join('\n') + '\n';
}

// --- command line ----------------------------------------------------------------------------------------------

export function generateFromFile(headerPath: string): string {
  return emitTs(parseAbi(readFileSync(headerPath, 'utf8')));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [header, out] = process.argv.slice(2);
  if (!header || !out) {
    process.stderr.write('usage: abigen.ts <opentransit_abi.h> <abi.generated.ts>\n');
    process.exit(2);
  }
  try {
    writeFileSync(out, generateFromFile(header));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  }
}
