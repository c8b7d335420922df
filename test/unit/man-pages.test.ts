// The man pages and --help say the same: every option a program's usage lists is documented in
// its page, with the same default, and the pages name no path of one particular PREFIX.
import test from 'ava';
import { readFileSync } from 'node:fs';
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
