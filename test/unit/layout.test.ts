// Who may import whom (README.md, Layout; agent/README.md): every relative import of the
// sources, static or dynamic, checked against the table below. A new import that crosses a
// line fails here, naming the file, the import and the rule.
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Each folder (or file) and the folders and files it may import besides its own; the longest
 * prefix that matches a file is its rule. Mirrors README.md and agent/README.md.
 */
const MAY_IMPORT: Record<string, string[]> = {
  'protocol/': [],
  'netlink/': ['protocol/'],
  'helper/': ['protocol/', 'netlink/'],
  'agent/': ['protocol/', 'netlink/', 'agent/'],
  'cnctl/': ['protocol/'],
  'agent/process/': ['protocol/', 'netlink/'],
  'agent/metadata/': ['protocol/', 'netlink/', 'agent/process/'],
  'agent/plan/': ['protocol/', 'netlink/', 'agent/metadata/model.ts'],
  'agent/coexist/': ['protocol/', 'netlink/', 'agent/plan/'],
  'agent/reconcile/': ['protocol/', 'netlink/', 'agent/process/', 'agent/metadata/model.ts', 'agent/plan/', 'agent/coexist/'],
  'agent/report/': ['protocol/', 'netlink/', 'agent/process/', 'agent/metadata/', 'agent/plan/', 'agent/coexist/', 'agent/reconcile/'],
};

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path);
    return /\.(ts|mjs)$/.test(name) ? [path] : [];
  });
}

/** The repository paths a file imports relatively (`.js` specifiers name `.ts` sources). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1]!);
  return specifiers.map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'));
}

function ruleOf(file: string): string | undefined {
  return Object.keys(MAY_IMPORT)
    .filter((prefix) => file.startsWith(prefix))
    .sort((a, b) => b.length - a.length)[0];
}

test('every import stays inside what its folder may import', (t) => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of ['protocol', 'netlink', 'helper', 'agent', 'cnctl'].flatMap(sources)) {
    const rule = ruleOf(file);
    if (!rule) continue;
    for (const target of importsOf(file)) {
      checked++;
      const allowed = [rule, ...MAY_IMPORT[rule]!];
      if (!allowed.some((prefix) => target.startsWith(prefix))) broken.push(`${file} imports ${target}: ${rule} may import ${allowed.join(', ')}`);
    }
  }
  t.true(checked > 100, `only ${checked} imports found: is the pattern still right?`);
  t.deepEqual(broken, []);
});

test('nothing under test/ imports bench/: the bench uses test/lib, one way', (t) => {
  const crossing = sources('test').flatMap((file) => importsOf(file).filter((target) => target.startsWith('bench/')).map((target) => `${file} imports ${target}`));
  t.deepEqual(crossing, []);
});

test('the import check sees static, dynamic and re-exporting imports', (t) => {
  const main = importsOf('agent/main.ts');
  t.true(main.includes('agent/report/api/server.ts'), 'the dynamic import of the REST API');
  t.true(importsOf('agent/metadata/providers/index.ts').includes('agent/metadata/providers/provider.ts'), 'export … from');
});
