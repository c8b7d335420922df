// The man pages and --help say the same: every option a program's usage lists is documented in
// its page, with the same default, and the pages name no path of one particular PREFIX. The
// REST API's limits in cloud-network(8) and the README are the ones the API applies.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { DEFAULT_API_LIMITS } from '../../agent/report/api/server.js';
import { USAGE as AGENT_USAGE } from '../../agent/process/command-line.js';
import { USAGE as CNCTL_USAGE } from '../../cnctl/command-line.js';
import { USAGE as HELPER_USAGE } from '../../helper/options.js';

const page = (name: string) => readFileSync(new URL(`../../man/${name}`, import.meta.url), 'utf8');

/** The text of a roff page with its escapes and font changes undone, one space between words. */
function plain(roff: string): string {
  return roff
    .split('\n')
    .filter((line) => !line.startsWith('.\\"'))
    .map((line) => line.replace(/^\.(B|I|BI|IB|BR|RB|IR|RI|TP|PP|SH|SS|TH|nf|fi|br)\b ?/, ''))
    .join(' ')
    .replace(/\\f[BIRP]/g, '')
    .replace(/\\\(en/g, '-')
    .replace(/\\-/g, '-')
    .replace(/"/g, '')
    .replace(/\s+/g, ' ');
}

/** Each option of a usage text, with the default it states, if any. */
function options(usage: string): { option: string; default?: string }[] {
  const found: { option: string; default?: string }[] = [];
  const lines = usage.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^\s+(?:-\w, )?(--[a-z-]+)/.exec(lines[i]!);
    if (!match) continue;
    // an option's description may continue on the lines below, up to the next option
    let text = lines[i]!;
    for (let j = i + 1; j < lines.length && !/^\s+(?:-\w, )?--/.test(lines[j]!) && lines[j]!.trim() !== ''; j++) text += ' ' + lines[j]!.trim();
    const stated = /\(default:? ([0-9][0-9-]*)/.exec(text)?.[1];
    found.push({ option: match[1]!, ...(stated !== undefined && { default: stated }) });
  }
  return found;
}

const PROGRAMS = [
  { program: 'cloud-network', usage: AGENT_USAGE, page: 'cloud-network.8', section: /\.SS cloud-network\n([\s\S]*?)\.SS/ },
  { program: 'cloud-network-helper', usage: HELPER_USAGE, page: 'cloud-network.8', section: /\.SS cloud-network-helper\n([\s\S]*?)\.SH/ },
  { program: 'cnctl', usage: CNCTL_USAGE, page: 'cnctl.1', section: /\.SH OPTIONS\n([\s\S]*?)\.SH/ },
];

for (const { program, usage, page: name, section } of PROGRAMS) {
  test(`every option of ${program} --help is in ${name}, with the same default`, (t) => {
    const text = plain(section.exec(page(name))?.[1] ?? '');
    t.not(text, '', `${name} has a section for ${program}'s options`);
    const listed = options(usage);
    t.true(listed.length > 2);
    for (const { option, default: stated } of listed) {
      const at = text.indexOf(option + ' ') >= 0 ? text.indexOf(option + ' ') : text.indexOf(option + ',');
      t.true(at >= 0, `${option} is documented in ${name}`);
      if (stated === undefined) continue;
      const paragraph = text.slice(at, text.indexOf(' --', at + option.length) >= 0 ? text.indexOf(' --', at + option.length) : undefined);
      t.regex(paragraph, new RegExp(`default ${stated.replace(/-/g, '\\s?-\\s?')}\\b`), `${option}: ${name} says the default is ${stated}, as --help does`);
    }
  });
}

test('the man pages name installed paths through the placeholders make install fills in', (t) => {
  for (const name of ['cloud-network.8', 'cnctl.1', 'cloud-network.toml.5']) {
    t.notRegex(page(name), /\/usr\/local\//, `${name} names no path of one PREFIX`);
  }
  t.regex(page('cloud-network.8'), /@LIBEXECDIR@\/cloud-network-helper/);
});

test('the REST API limits cloud-network(8) and the README state are the ones the API applies', (t) => {
  const l = DEFAULT_API_LIMITS;
  const s = (ms: number) => `${ms / 1000} s`;
  const limits = plain(/\.SS LIMITS\n([\s\S]*?)\.SH/.exec(page('cloud-network.8'))?.[1] ?? '');
  for (const stated of [
    `Request line and headers ${l.maxHeaderSize / 1024} KiB`,
    `at most ${l.maxRequestsPerConnection} requests on one connection`,
    `${s(l.headersTimeout)} from connecting to a complete request`,
    `${s(l.keepAliveTimeout)} between an answer and the next request`,
    `${s(l.responseTimeout)} for the client to read an answer`,
    `until its first bytes arrive, for ${s(l.deferAccept)} at most`,
    `Connections on Listen= ${l.maxIdleConnections} waiting for a request`,
    `up to ${l.maxConnections} come in`,
    `The same rule, with ${l.maxIdleConnectionsPerClass} and ${l.maxConnectionsPerClass}, for each class of user`,
  ]) {
    t.true(limits.includes(stated), `cloud-network(8) LIMITS says "${stated}"`);
  }
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const table = /## REST API limits\n([\s\S]*?)\n## /.exec(readme)?.[1]?.replace(/\s+/g, ' ') ?? '';
  for (const stated of [
    `| request line and headers | ${l.maxHeaderSize / 1024} KiB |`,
    `| requests on one connection | ${l.maxRequestsPerConnection} |`,
    `| from connecting to a complete request | ${s(l.headersTimeout)} |`,
    `| between an answer and the next request | ${s(l.keepAliveTimeout)} |`,
    `| for the client to read an answer | ${s(l.responseTimeout)} |`,
    `until its first bytes, at most ${s(l.deferAccept)} |`,
    `| connections on \`Listen=\` | ${l.maxIdleConnections} waiting for a request, ${l.maxConnections} in all |`,
    `all other users together | ${l.maxIdleConnectionsPerClass} waiting for a request, ${l.maxConnectionsPerClass} in all |`,
  ]) {
    t.true(table.includes(stated), `README, "REST API limits", says "${stated}"`);
  }
});
