/**
 * IP address and CIDR literals exactly as wirefilter reads them. wirefilter hands address text to Rust's
 * `std::net::IpAddr::from_str` and CIDRs to the `cidr` crate, so this module reproduces those rules rather
 * than Node's `net.isIP` (which differs: Rust rejects IPv4 octets with leading zeros such as `010.0.0.1`,
 * accepts zero-padded IPv6 groups such as `0001::`, and allows a dotted quad only in the last 32 bits of an
 * IPv6 address).
 */

export type Family = 4 | 6;

export interface ParsedIp {
  family: Family;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/** Characters wirefilter takes as one IP/CIDR/range token before parsing it. */
export function isIpTokenChar(c: string): boolean {
  return /^[0-9a-fA-F:./]$/.test(c);
}

/** A tiny cursor mirroring the structure of Rust's address parser, so its accept/reject matches. */
class Reader {
  pos = 0;
  constructor(readonly s: string) {}

  atomically<T>(f: () => T | undefined): T | undefined {
    const save = this.pos;
    const r = f();
    if (r === undefined) this.pos = save;
    return r;
  }

  readChar(c: string): boolean {
    if (this.s[this.pos] === c) {
      this.pos++;
      return true;
    }
    return false;
  }

  /** Rust's read_number: digits in radix, at most maxDigits, value must fit in `max`. */
  readNumber(radix: 10 | 16, maxDigits: number, allowZeroPrefix: boolean, max: number): number | undefined {
    return this.atomically(() => {
      let result = 0;
      let digits = 0;
      const leadingZero = this.s[this.pos] === '0';
      for (;;) {
        const ch = this.s[this.pos];
        if (ch === undefined) break;
        const d = digitValue(ch, radix);
        if (d === undefined) break;
        this.pos++;
        result = result * radix + d;
        if (result > max) return undefined;
        digits++;
        if (digits > maxDigits) return undefined;
      }
      if (digits === 0) return undefined;
      if (!allowZeroPrefix && leadingZero && digits > 1) return undefined;
      return result;
    });
  }

  readIpv4(): Uint8Array | undefined {
    return this.atomically(() => {
      const out = new Uint8Array(4);
      for (let i = 0; i < 4; i++) {
        if (i > 0 && !this.readChar('.')) return undefined;
        const n = this.readNumber(10, 3, false, 255);
        if (n === undefined) return undefined;
        out[i] = n;
      }
      return out;
    });
  }

  /** Reads up to groups.length groups; returns [count, endedWithIpv4]. */
  private readGroups(groups: number[], limit: number): [number, boolean] {
    for (let i = 0; i < limit; i++) {
      // A trailing dotted quad fills two groups, so it needs two free slots.
      if (i < limit - 1) {
        const v4 = this.atomically(() => {
          if (i > 0 && !this.readChar(':')) return undefined;
          return this.readIpv4();
        });
        if (v4) {
          groups[i] = (v4[0]! << 8) | v4[1]!;
          groups[i + 1] = (v4[2]! << 8) | v4[3]!;
          return [i + 2, true];
        }
      }
      const g = this.atomically(() => {
        if (i > 0 && !this.readChar(':')) return undefined;
        return this.readNumber(16, 4, true, 0xffff);
      });
      if (g === undefined) return [i, false];
      groups[i] = g;
    }
    return [limit, false];
  }

  readIpv6(): Uint8Array | undefined {
    return this.atomically(() => {
      const head = new Array<number>(8).fill(0);
      const [headSize, headIpv4] = this.readGroups(head, 8);
      if (headSize < 8) {
        // A dotted quad may only end the address, never precede `::`.
        if (headIpv4) return undefined;
        if (!this.readChar(':') || !this.readChar(':')) return undefined;
        // `::` stands for at least one zero group.
        const limit = 8 - (headSize + 1);
        const tail = new Array<number>(limit).fill(0);
        const [tailSize] = this.readGroups(tail, limit);
        for (let i = 0; i < tailSize; i++) head[8 - tailSize + i] = tail[i]!;
      }
      const out = new Uint8Array(16);
      head.forEach((g, i) => {
        out[2 * i] = g >> 8;
        out[2 * i + 1] = g & 0xff;
      });
      return out;
    });
  }
}

function digitValue(ch: string, radix: 10 | 16): number | undefined {
  const code = ch.charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48;
  if (radix === 16) {
    if (code >= 97 && code <= 102) return code - 87;
    if (code >= 65 && code <= 70) return code - 55;
  }
  return undefined;
}

/** Parses a whole string as an IPv4 or IPv6 address (Rust `IpAddr::from_str` rules), else undefined. */
export function parseIpAddress(s: string): ParsedIp | undefined {
  const r4 = new Reader(s);
  const v4 = r4.readIpv4();
  if (v4 && r4.pos === s.length) return { family: 4, bytes: v4 };
  const r6 = new Reader(s);
  const v6 = r6.readIpv6();
  if (v6 && r6.pos === s.length) return { family: 6, bytes: v6 };
  return undefined;
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest run of two or more zero groups as `::`). */
export function formatIp(ip: ParsedIp): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function compareIp(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return 0;
}

/** The address with every bit after the first `prefix` cleared. */
export function networkOf(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - 8 * i));
    out[i] = out[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** Parses a decimal prefix length the way Rust's `u8::from_str` does (optional `+`, must fit in a byte). */
export function parsePrefixLength(s: string): number | undefined {
  const digits = s.startsWith('+') && s.length > 1 ? s.slice(1) : s;
  if (!/^[0-9]+$/.test(digits)) return undefined;
  const n = Number(digits.replace(/^0+(?=.)/, ''));
  return n <= 255 ? n : undefined;
}
