// The API's resources as text for people: the neutral-model fields first, with the same labels
// on every cloud, then the provider's own details, each labelled with the provider's own name.
import type { LinkResource, NetworkResource, StatusResource, SystemResource, UnmatchedNic } from '../protocol/rest.js';
import { block, type Colour, type Field, type Style } from './output.js';

const STATE_COLOUR: Record<LinkResource['state'], Colour> = { configured: 'green', pending: 'yellow', error: 'red', 'left-alone': 'yellow' };

const yesNo = (value: boolean) => (value ? 'yes' : 'no');

export function renderSystem(system: SystemResource, s: Style): string {
  return block(
    [
      ['Provider', system.provider],
      ['Instance Id', system.id],
      ['Name', system.name],
      ['Region', system.region],
      ['Zone', system.zone],
      ['Size', system.size],
      ['Image', system.image],
      ...detailFields(system.details),
    ],
    s,
  );
}

/** The provider's details, one field each in the provider's order; an older agent sends none. */
function detailFields(details: Record<string, string> | undefined): Field[] {
  return Object.entries(details ?? {}).map(([key, value]): Field => [key, value]);
}

export function renderLink(link: LinkResource, s: Style): string {
  const fields: Field[] = [
    ['Name', link.name],
    ['Ifindex', String(link.ifindex)],
    ['MAC Address', link.mac],
    ['Primary', yesNo(link.primary)],
    ['Public Ip', link.publicIpv4],
    ['Private Ip', link.privateIpv4],
    ['IPv6', link.ipv6],
    ['Routed Ips', link.routedRanges],
    ['Subnet', link.subnet ?? undefined],
    ['Gateway', link.gateway ?? undefined],
    ['MTU', link.mtu === null ? undefined : String(link.mtu)],
    ['Table', link.table === null ? 'main' : String(link.table)],
    ['State', link.managedBy ? `managed by ${link.managedBy.tool}, left alone` : link.state, STATE_COLOUR[link.state]],
  ];
  if (link.managedBy) fields.push(['Why', link.managedBy.why]);
  if (link.rangesLeftAlone?.length) fields.push(['Ranges Left', link.rangesLeftAlone]);
  fields.push(...detailFields(link.details));
  // the error last, where the eye ends
  if (link.error) fields.push(['Error', link.error, 'red']);
  return block(fields, s);
}

function renderUnmatched(nic: UnmatchedNic, s: Style): string {
  return block(
    [
      ['Name', undefined],
      ['MAC Address', nic.mac],
      ['Primary', yesNo(nic.primary)],
      ['State', 'not configured', 'yellow'],
      ['Error', nic.problem, 'yellow'],
    ],
    s,
  );
}

export function renderNetwork(network: NetworkResource, s: Style): string {
  const blocks = [...network.links.map((l) => renderLink(l, s)), ...network.unmatched.map((n) => renderUnmatched(n, s))];
  return blocks.length === 0 ? 'no network interfaces in the metadata\n' : blocks.join('\n');
}

export function renderStatus(status: StatusResource, s: Style, now: number): string {
  const when = (iso: string | null) => (iso === null ? undefined : `${iso} (${ago(iso, now)})`);
  const helper =
    status.helperReachable === null ? 'not contacted yet' : status.helperReachable ? 'reachable' : `not reachable${status.helperError ? `: ${status.helperError}` : ''}`;
  const fields: Field[] = [
    ['Agent', `cloud-network ${status.version}`],
    ['Provider', status.provider],
    ['Ready', status.ready ? 'yes' : 'no (no metadata yet)', status.ready ? undefined : 'yellow'],
    ['Converged', yesNo(status.converged), status.converged ? 'green' : 'yellow'],
    ['Reconciling', yesNo(status.reconciling)],
    ['Started', when(status.startedAt)],
    ['Last Refresh', when(status.lastRefresh)],
    ['Last Success', when(status.lastSuccess)],
    ['Last Metadata', when(status.lastMetadataSuccess)],
    ['Last Error', status.lastError ?? undefined, 'red'],
    ['Helper', helper, status.helperReachable === false ? 'red' : undefined],
    ['Pending', status.pending.length > 0 ? status.pending : String(status.pendingOperations)],
  ];
  // each failure in its own field, also when it is the last error too
  if (status.metadataError) fields.push(['Metadata Error', status.metadataError, 'red']);
  if (status.configError) fields.push(['Config Error', status.configError, 'red']);
  if (status.stateError) fields.push(['State Error', status.stateError, 'red']);
  for (const [link, error] of Object.entries(status.linkErrors)) fields.push([`Error ${link}`, error, 'red']);
  // older agents' answers lack the coexistence fields
  for (const tool of status.tools ?? []) fields.push([`Tool ${tool.tool}`, `${tool.stance === 'yield' ? 'yields to it' : 'coexists'}: ${tool.note}`]);
  for (const [link, why] of Object.entries(status.leftAlone ?? {})) fields.push([link, why, 'yellow']);
  for (const collision of status.collisions ?? []) fields.push(['Collision', collision, 'yellow']);
  for (const c of status.contested ?? []) {
    fields.push(['Not Re-Added', `${c.object}: removed ${c.removals} times within a minute${c.likelyTool ? `, likely by ${c.likelyTool}` : ''}; until the next reload`, 'red']);
  }
  return block(fields, s);
}

export function renderSshKeys(keys: string[]): string {
  return keys.length === 0 ? 'no SSH keys in the metadata\n' : keys.join('\n') + '\n';
}

/** How long ago a time was, as systemctl says it: "4s ago", "2min 5s ago", "3h 10min ago", "2 days ago". */
export function ago(iso: string, now: number): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return 'unknown';
  if (seconds < 0) return 'in the future';
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}min ${seconds % 60}s ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}min ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

const LIST_STATE: Record<LinkResource['state'], string> = { configured: 'configured', pending: 'pending', error: 'error', 'left-alone': 'left alone' };

/** One line per interface, as networkctl list: index, name, MAC, NIC index, table, IPs, state. */
export function renderList(network: NetworkResource, s: Style): string {
  const header = ['IDX', 'LINK', 'MAC', 'NIC', 'TABLE', 'IPS', 'STATE'];
  const rows: { cells: string[]; colour: Colour }[] = [
    ...network.links.map((link) => ({
      cells: [
        String(link.ifindex),
        link.name,
        link.mac,
        String(link.nicIndex),
        link.table === null ? 'main' : String(link.table),
        String(link.privateIpv4.length + link.ipv6.length),
        link.managedBy ? `left to ${link.managedBy.tool}` : LIST_STATE[link.state],
      ],
      colour: STATE_COLOUR[link.state],
    })),
    ...network.unmatched.map((nic) => ({ cells: ['-', '-', nic.mac, '-', '-', '-', 'no link'], colour: 'yellow' as Colour })),
  ];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row.cells[i]!.length)));
  // numbers right-aligned, text left-aligned; the last column is not padded
  const numeric = new Set([0, 3, 5]);
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === cells.length - 1 ? cell : numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join(' ');
  const lines = [
    s.paint(line(header), 'bold'),
    ...rows.map((row) => {
      const text = line(row.cells);
      const state = row.cells.at(-1)!;
      return text.slice(0, text.length - state.length) + s.paint(state, row.colour);
    }),
  ];
  const count = network.links.length + network.unmatched.length;
  return `${lines.join('\n')}\n\n${count} ${count === 1 ? 'interface' : 'interfaces'} listed.\n`;
}
