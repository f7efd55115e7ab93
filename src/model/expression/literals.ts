/**
 * Integer and string ("Bytes") literals with wirefilter's exact lexical rules. Each lexer starts at `pos` in
 * `src` and returns either the value and the end offset, or the offset and text of what it could not read;
 * the parser turns the latter into an ExpressionError that says what the field expected.
 */

export type Lexed<T> = { ok: true; value: T; end: number } | { ok: false; at: number; found: string | undefined };

const isHexDigit = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** Offset after the run of hex digits at `pos`. wirefilter takes hex digits even for decimal/octal, then
 * fails on the ones the radix does not allow, so `80a` is one bad number rather than `80` then junk. */
function hexRunEnd(src: string, pos: number): number {
  let end = pos;
  while (isHexDigit(src[end])) end++;
  return end;
}

/**
 * wirefilter's integer: `0x` + hex digits; else a leading `0` means octal (`010` is 8); else decimal with an
 * optional `-`. `0o`, `0b`, `+` and `_` separators do not exist. The value is exact up to 2^53 and marked
 * unsafe beyond; callers only accept small ranges, so any out-of-range value is simply rejected.
 */
export function lexInt(src: string, pos: number): Lexed<number> {
  let radix: 8 | 10 | 16;
  let digitsStart: number;
  let negative = false;
  if (src.startsWith('0x', pos)) {
    radix = 16;
    digitsStart = pos + 2;
  } else if (src[pos] === '0') {
    radix = 8;
    digitsStart = pos;
  } else {
    radix = 10;
    negative = src[pos] === '-';
    digitsStart = negative ? pos + 1 : pos;
  }
  const end = hexRunEnd(src, digitsStart);
  if (end === digitsStart) return { ok: false, at: pos, found: undefined };
  const digits = src.slice(digitsStart, end);
  const valid = radix === 16 ? /^[0-9a-fA-F]+$/ : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) return { ok: false, at: pos, found: src.slice(pos, end) };
  const magnitude = parseInt(digits, radix);
  // `-0` is a valid spelling of zero in wirefilter; keep the AST free of JavaScript's -0.
  const value = negative && magnitude !== 0 ? -magnitude : magnitude;
  return { ok: true, value, end };
}

/** Rust's `u8::from_str_radix`: an optional leading `+`, then only digits of the radix, value <= 255. */
function u8FromStrRadix(s: string, radix: 8 | 16): number | undefined {
  const digits = s.startsWith('+') && s.length > 1 ? s.slice(1) : s;
  const valid = radix === 16 ? /^[0-9a-fA-F]+$/ : /^[0-7]+$/;
  if (!valid.test(digits)) return undefined;
  const n = parseInt(digits, radix);
  return n <= 255 ? n : undefined;
}

/** The next `count` characters (code points, as Rust's `chars()`), or undefined if the input is shorter. */
function takeChars(src: string, pos: number, count: number): { text: string; end: number } | undefined {
  let end = pos;
  for (let i = 0; i < count; i++) {
    const cp = src.codePointAt(end);
    if (cp === undefined) return undefined;
    end += cp > 0xffff ? 2 : 1;
  }
  return { text: src.slice(pos, end), end };
}

function fixedByte(src: string, pos: number, count: number, radix: 8 | 16): Lexed<number> {
  const t = takeChars(src, pos, count);
  if (!t) return { ok: false, at: pos, found: pos < src.length ? src.slice(pos) : undefined };
  const b = u8FromStrRadix(t.text, radix);
  if (b === undefined) return { ok: false, at: pos, found: t.text };
  return { ok: true, value: b, end: t.end };
}

const utf8 = (s: string) => [...Buffer.from(s, 'utf8')];

/** `"…"` with escapes `\"`, `\\`, `\xHH` and `\OOO` (three octal digits); nothing else may follow `\`. */
function lexQuoted(src: string, pos: number): Lexed<number[]> {
  const bytes: number[] = [];
  let i = pos + 1;
  for (;;) {
    if (i >= src.length) return { ok: false, at: pos, found: src.slice(pos) };
    const c = src[i]!;
    if (c === '"') return { ok: true, value: bytes, end: i + 1 };
    if (c !== '\\') {
      const cp = src.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...utf8(ch));
      i += ch.length;
      continue;
    }
    const e = src[i + 1];
    if (e === undefined) return { ok: false, at: pos, found: src.slice(pos) };
    if (e === '"' || e === '\\') {
      bytes.push(e.charCodeAt(0));
      i += 2;
    } else if (e === 'x') {
      const b = fixedByte(src, i + 2, 2, 16);
      if (!b.ok) return b;
      bytes.push(b.value);
      i = b.end;
    } else if (e >= '0' && e <= '7') {
      const b = fixedByte(src, i + 1, 3, 8);
      if (!b.ok) return b;
      bytes.push(b.value);
      i = b.end;
    } else {
      return { ok: false, at: i, found: src.slice(i, i + 2) };
    }
  }
}

/** `r"…"` / `r#"…"#` (up to 255 `#`): no escapes; ends at a `"` followed by as many `#` as opened it. */
function lexRaw(src: string, pos: number): Lexed<number[]> {
  let i = pos + 1;
  let hashes = 0;
  while (src[i] === '#') {
    hashes++;
    i++;
  }
  if (hashes > 255 || src[i] !== '"') return { ok: false, at: pos, found: src.slice(pos, i + 1) };
  const bodyStart = i + 1;
  for (let j = bodyStart; j < src.length; j++) {
    if (src[j] !== '"') continue;
    let k = j + 1;
    while (k < src.length && k - (j + 1) < hashes && src[k] === '#') k++;
    if (k - (j + 1) === hashes) return { ok: true, value: utf8(src.slice(bodyStart, j)), end: k };
  }
  return { ok: false, at: pos, found: src.slice(pos) };
}

/** `74:63:70`: two or more hex bytes, each followed by one of `:` `-` `.` except the last. */
function lexByteString(src: string, pos: number): Lexed<number[]> {
  const bytes: number[] = [];
  let i = pos;
  for (;;) {
    const b = fixedByte(src, i, 2, 16);
    if (!b.ok) return { ok: false, at: pos, found: b.found === undefined ? undefined : src.slice(pos, b.at + b.found.length) };
    bytes.push(b.value);
    i = b.end;
    const sep = src[i];
    if (sep === ':' || sep === '-' || sep === '.') {
      i++;
    } else if (bytes.length < 2) {
      return { ok: false, at: pos, found: src.slice(pos, i + 1) || undefined };
    } else {
      return { ok: true, value: bytes, end: i };
    }
  }
}

/** A wirefilter Bytes literal: quoted string, raw string or byte string. */
export function lexBytes(src: string, pos: number): Lexed<number[]> {
  const c = src[pos];
  if (c === undefined) return { ok: false, at: pos, found: undefined };
  if (c === '"') return lexQuoted(src, pos);
  if (c === 'r') return lexRaw(src, pos);
  return lexByteString(src, pos);
}
