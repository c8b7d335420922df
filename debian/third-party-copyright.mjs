#!/usr/bin/env node
// Writes the copyright file's paragraphs for the npm packages the package ships: those compiled
// into the bundles (named by the bundles' source maps) and those in its node_modules, each with
// its version, copyright lines and license text as found in the checkout's node_modules.
//
// Usage: node debian/third-party-copyright.mjs INSTALLED_LIBDIR   (from the checkout)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const lib = process.argv[2];
if (!lib) {
  process.stderr.write('usage: node debian/third-party-copyright.mjs INSTALLED_LIBDIR\n');
  process.exit(2);
}

/** "../../node_modules/a/node_modules/@b/c/x.js" → "node_modules/a/node_modules/@b/c" */
function packageDir(source) {
  const start = source.indexOf('node_modules/');
  if (start < 0) return undefined;
  const parts = source.slice(start).split('/');
  const last = parts.lastIndexOf('node_modules');
  return parts.slice(0, parts[last + 1].startsWith('@') ? last + 3 : last + 2).join('/');
}

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

const packages = new Set();
for (const file of files(join(lib, 'dist'))) {
  if (!file.endsWith('.js.map')) continue;
  for (const source of JSON.parse(readFileSync(file, 'utf8')).sources) {
    const dir = packageDir(source);
    if (dir) packages.add(dir);
  }
}
for (const file of files(join(lib, 'node_modules'))) {
  if (file.endsWith('/package.json')) packages.add(packageDir(file.slice(lib.length)));
}

function licenseText(dir) {
  const name = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f) && statSync(join(dir, f)).isFile());
  return name ? readFileSync(join(dir, name), 'utf8').trim() : undefined;
}

/** DEP-5 continuation lines: one space, and " ." for an empty line */
const indent = (text) => text.split('\n').map((line) => (line.trim() === '' ? ' .' : ` ${line.trimEnd()}`)).join('\n');

// for a package that says "MIT" in package.json and ships no license file (safe-json-stringify)
const EXPAT = `Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.`;
let expatNeeded = false;

const paragraphs = [];
for (const dir of [...packages].sort()) {
  if (!existsSync(join(dir, 'package.json'))) throw new Error(`${dir}/package.json is missing: run make build in the checkout first`);
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const text = licenseText(dir);
  if (!text && meta.license !== 'MIT') throw new Error(`${dir} (${meta.license}) has no license file to quote: add its license text here`);
  if (!text) expatNeeded = true;
  const author = typeof meta.author === 'string' ? meta.author : meta.author?.name;
  const notices = (text ?? '').split('\n').filter((line) => /^\s*(copyright\s+(\(c\)|©|\d)|\(c\)|©)/i.test(line)).map((line) => line.trim());
  paragraphs.push(
    [
      `Files: ${dir}/*`,
      `Copyright: ${(notices.length > 0 ? notices : [author ?? `the authors of ${meta.name}`]).join('\n ')}`,
      text ? `License: ${meta.license}\n${indent(text)}` : 'License: MIT',
      `Comment: ${meta.name} ${meta.version}`,
    ].join('\n'),
  );
}
if (expatNeeded) paragraphs.push(`License: MIT\n${indent(EXPAT)}`);
process.stdout.write(`\n${paragraphs.join('\n\n')}\n`);
