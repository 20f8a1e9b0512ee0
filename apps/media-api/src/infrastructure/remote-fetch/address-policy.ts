import ipaddr from 'ipaddr.js';

export type AddressVerdict =
  | { allowed: true; address: string; family: 4 | 6; exempted: boolean }
  | { allowed: false; address: string; range: string };

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** Only 2000::/3 is global unicast; everything outside it is reserved or special-purpose. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3') as [ipaddr.IPv6, number];
/** IPv4-compatible addresses (::a.b.c.d, deprecated) reach the embedded IPv4 host on some stacks. */
const IPV4_COMPATIBLE = ipaddr.parseCIDR('::/96') as [ipaddr.IPv6, number];
/** The well-known NAT64 prefix; 64:ff9b:1::/48 (local-use NAT64) stays blocked outright. */
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96') as [ipaddr.IPv6, number];

/**
 * Decides which IP addresses a server-side fetch may connect to: public unicast only, unless an
 * operator exempts a range with `allowCidrs`. Default-deny — anything ipaddr.js does not call
 * `unicast` is refused, so a range it learns about later is refused too. Pure: no I/O.
 *
 * IPv6 forms that carry an IPv4 address the packet may end up at (IPv4-mapped, IPv4-compatible,
 * SIIT and NAT64) are judged by that IPv4 address; 6to4 and Teredo are refused outright, since they
 * hand the packet to relays and nobody needs them to fetch an image.
 */
export class AddressPolicy {
  private readonly exemptions: [Address, number][];

  constructor(allowCidrs: readonly string[] = []) {
    this.exemptions = allowCidrs.map((cidr) => parseCidr(cidr));
  }

  check(input: string): AddressVerdict {
    let parsed: Address;
    try {
      parsed = ipaddr.parse(stripBrackets(input));
    } catch {
      return { allowed: false, address: input, range: 'invalid' };
    }
    const address = parsed.toString();
    const family = parsed.kind() === 'ipv4' ? 4 : 6;
    if (this.isExempt(parsed)) return { allowed: true, address, family, exempted: true };
    const range = blockedRange(parsed);
    if (range) return { allowed: false, address, range };
    return { allowed: true, address, family, exempted: false };
  }

  private isExempt(address: Address): boolean {
    const candidates: Address[] = [address];
    const embedded = address.kind() === 'ipv6' ? embeddedIPv4(address as ipaddr.IPv6) : null;
    if (embedded) candidates.push(embedded);
    return candidates.some((candidate) =>
      this.exemptions.some(([range, bits]) => range.kind() === candidate.kind() && candidate.match(range, bits)),
    );
  }
}

/** The special-purpose range an address falls in, or null when it is public unicast. */
function blockedRange(address: Address): string | null {
  if (address.kind() === 'ipv4') {
    const range = (address as ipaddr.IPv4).range();
    return range === 'unicast' ? null : range;
  }
  const v6 = address as ipaddr.IPv6;
  const embedded = embeddedIPv4(v6);
  if (embedded) {
    const inner = blockedRange(embedded);
    return inner ? `${v6.range() === 'unicast' ? 'ipv4Compatible' : v6.range()}:${inner}` : null;
  }
  const range = v6.range();
  if (range !== 'unicast') return range;
  if (!v6.match(GLOBAL_UNICAST_V6)) return 'reservedV6';
  return null;
}

/** The IPv4 address an IPv6 address delivers to, for the forms that translate rather than tunnel. */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | null {
  const range = address.range();
  const parts = address.parts;
  if (range === 'ipv4Mapped' || range === 'rfc6145') return lastFour(parts);
  if (range === 'rfc6052' && address.match(NAT64_WELL_KNOWN)) return lastFour(parts);
  if (range !== 'unspecified' && range !== 'loopback' && address.match(IPV4_COMPATIBLE)) return lastFour(parts);
  return null;
}

export function parseCidr(cidr: string): [Address, number] {
  const trimmed = cidr.trim();
  try {
    return trimmed.includes('/') ? ipaddr.parseCIDR(trimmed) : ([ipaddr.parse(trimmed), ipaddr.parse(trimmed).kind() === 'ipv4' ? 32 : 128] as [Address, number]);
  } catch {
    throw new Error(`invalid CIDR in the remote-fetch allow list: ${JSON.stringify(cidr)}`);
  }
}

/**
 * An IP literal as the WHATWG URL parser leaves it (`127.0.0.1`, `[::1]`), or null for a name.
 * The URL parser already turned `2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` into dotted
 * quads, so only the canonical spelling is accepted here: nothing ipaddr.js reads more leniently
 * than the socket layer would.
 */
export function ipLiteralOf(hostname: string): string | null {
  if (hostname.startsWith('[') && hostname.endsWith(']')) {
    const inner = hostname.slice(1, -1);
    return ipaddr.IPv6.isValid(inner) ? inner : null;
  }
  return ipaddr.IPv4.isValidFourPartDecimal(hostname) ? hostname : null;
}

/** `localhost` and `*.localhost` (RFC 6761) name this machine whatever DNS says. */
export function isLocalhostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

function lastFour(parts: number[]): ipaddr.IPv4 {
  return new ipaddr.IPv4([parts[6] >> 8, parts[6] & 0xff, parts[7] >> 8, parts[7] & 0xff]);
}

function stripBrackets(input: string): string {
  return input.startsWith('[') && input.endsWith(']') ? input.slice(1, -1) : input;
}
