// Reading fields of a metadata document with checks, so that every provider reports a missing
// or wrong field the same way: the provider, the field path and the NIC, as a MetadataError.
import { formatIp, parseIp, type ParsedIp } from '../../../protocol/ip.js';
import type { ProviderName } from '../model.js';
import { documentError } from '../errors.js';

export class DocumentReader {
  constructor(
    readonly provider: ProviderName,
    readonly nic?: string,
  ) {}

  forNic(mac: string): DocumentReader {
    return new DocumentReader(this.provider, mac);
  }

  malformed(field: string, problem: string): never {
    throw documentError(this.provider, 'malformed', field, problem, this.nic);
  }

  incomplete(field: string, problem: string): never {
    throw documentError(this.provider, 'incomplete', field, problem, this.nic);
  }

  json(text: string, field = 'the answer'): unknown {
    try {
      return JSON.parse(text);
    } catch (error) {
      return this.malformed(field, `is not valid JSON (${(error as Error).message})`);
    }
  }

  object(value: unknown, field: string): Record<string, unknown> {
    if (value === undefined || value === null) this.incomplete(field, 'is missing');
    if (typeof value !== 'object' || Array.isArray(value)) this.malformed(field, `is not an object (${describe(value)})`);
    return value as Record<string, unknown>;
  }

  array(value: unknown, field: string): unknown[] {
    if (value === undefined || value === null) this.incomplete(field, 'is missing');
    if (!Array.isArray(value)) this.malformed(field, `is not a list (${describe(value)})`);
    return value as unknown[];
  }

  string(value: unknown, field: string): string {
    if (value === undefined || value === null) this.incomplete(field, 'is missing');
    if (typeof value !== 'string') this.malformed(field, `is not text (${describe(value)})`);
    return value as string;
  }

  /** Text that may be absent or "" (clouds use both for "does not apply"). */
  optionalString(value: unknown, field: string): string {
    if (value === undefined || value === null) return '';
    return this.string(value, field);
  }

  /** A canonical IPv4 or IPv6 address of the given family. */
  ip(value: unknown, field: string, family: 'inet' | 'inet6'): string {
    return formatIp(this.parsedIp(value, field, family));
  }

  /** An IPv4 or IPv6 address of the given family, parsed (for a caller that also needs its bytes). */
  parsedIp(value: unknown, field: string, family: 'inet' | 'inet6'): ParsedIp {
    const text = this.string(value, field).trim();
    const parsed = parseIp(text);
    if (!parsed || parsed.family !== family) {
      this.malformed(field, `${JSON.stringify(text)} is not an ${family === 'inet' ? 'IPv4' : 'IPv6'} address`);
    }
    return parsed;
  }

  /** A prefix length given as a number or as digits in a string (Azure sends "24"). */
  prefixLength(value: unknown, field: string, max: number): number {
    const text = typeof value === 'number' ? String(value) : this.string(value, field).trim();
    const n = Number(text);
    if (!/^\d{1,3}$/.test(text) || n > max) this.malformed(field, `${JSON.stringify(value)} is not a prefix length (0–${max})`);
    return n;
  }
}

/** "000D3A5D2D66", "00-0D-3A-5D-2D-66" or "00:0d:3a:5d:2d:66" → "00:0d:3a:5d:2d:66"; undefined if not a MAC. */
export function canonicalMac(text: string): string | undefined {
  const hex = text.trim().replace(/[:-]/g, '').toLowerCase();
  if (!/^[0-9a-f]{12}$/.test(hex)) return undefined;
  if (text.includes(':') || text.includes('-')) {
    if (!/^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(text.trim())) return undefined;
  }
  return hex.match(/../g)!.join(':');
}

/** The prefix length of a dotted netmask such as 255.255.240.0; undefined when not contiguous. */
export function netmaskLength(mask: string): number | undefined {
  const parsed = parseIp(mask);
  if (!parsed || parsed.family !== 'inet') return undefined;
  const bits = Array.from(parsed.bytes, (b) => b.toString(2).padStart(8, '0')).join('');
  return /^1*0*$/.test(bits) ? bits.indexOf('0') === -1 ? 32 : bits.indexOf('0') : undefined;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/**
 * The provider's own facts for `details` (model.ts), under its own names: text and numbers as
 * text, lists of them joined with ", "; an empty or absent value, or one of another shape, is
 * left out, because details are only shown and a missing one must not cost the model.
 */
export function details(entries: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(entries)) {
    const text = detailText(value);
    if (text !== undefined && text !== '') out[key] = text;
  }
  return out;
}

function detailText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (Array.isArray(value)) {
    const items = value.map(detailText);
    return items.every((item) => item !== undefined) ? items.filter((item) => item !== '').join(', ') : undefined;
  }
  return undefined;
}

/** The non-empty lines of a listing, trimmed (EC2's and Alibaba's meta-data directories). */
export function lines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/**
 * A `network/interfaces/macs/` listing (EC2, Alibaba) and its entries as listed: each must be a
 * MAC, none twice, and the primary NIC's among them.
 */
export function macListing(doc: DocumentReader, text: string | undefined, primaryMac: string, primaryIs: string): { listing: string; entries: string[] } {
  const field = 'meta-data/network/interfaces/macs/';
  const listing = text ?? doc.incomplete(field, 'is missing (404)');
  const entries = lines(listing).map((entry) => entry.replace(/\/$/, ''));
  if (entries.length === 0) doc.incomplete(field, 'is empty (no NIC)');
  const seen = new Set<string>();
  for (const entry of entries) {
    const mac = canonicalMac(entry) ?? doc.malformed(field, `lists ${JSON.stringify(entry)}, not a MAC address`);
    if (seen.has(mac)) doc.forNic(mac).malformed(field, 'lists this MAC twice');
    seen.add(mac);
  }
  if (!seen.has(primaryMac)) doc.forNic(primaryMac).incomplete(field, `does not list the primary ${primaryIs}`);
  return { listing, entries };
}
