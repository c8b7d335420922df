// The API's resources as text for people. Only neutral-model fields, so the same command
// prints the same labels on every cloud.
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
    ],
    s,
  );
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
    ['Subnet', link.subnet],
    ['Gateway', link.gateway],
    ['MTU', link.mtu === undefined ? undefined : String(link.mtu)],
    ['Table', link.table === undefined ? 'main' : String(link.table)],
    ['State', link.managedBy ? `managed by ${link.managedBy.tool}, left alone` : link.state, STATE_COLOUR[link.state]],
  ];
  if (link.managedBy) fields.push(['Why', link.managedBy.why]);
  if (link.rangesLeftAlone?.length) fields.push(['Ranges Left', link.rangesLeftAlone]);
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

export function renderStatus(status: StatusResource, s: Style): string {
  const helper =
    status.helperReachable === null ? 'not contacted yet' : status.helperReachable ? 'reachable' : `not reachable${status.helperError ? `: ${status.helperError}` : ''}`;
  const fields: Field[] = [
    ['Agent', `cloud-network ${status.version}`],
    ['Provider', status.provider],
    ['Ready', status.ready ? 'yes' : 'no (no metadata yet)', status.ready ? undefined : 'yellow'],
    ['Converged', yesNo(status.converged), status.converged ? 'green' : 'yellow'],
    ['Reconciling', yesNo(status.reconciling)],
    ['Started', status.startedAt],
    ['Last Refresh', status.lastRefresh ?? undefined],
    ['Last Success', status.lastSuccess ?? undefined],
    ['Last Metadata', status.lastMetadataSuccess ?? undefined],
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
