// The built bundles (make build): V8 keeps a script's source in the heap for as long as the
// program runs, at one byte per character only when every character is Latin-1.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';

const dist = new URL('../../dist/', import.meta.url).pathname;

test('every built bundle is Latin-1 throughout, so its source costs the heap one byte per character', (t) => {
  const bundles = readdirSync(dist, { recursive: true }).map(String).filter((file) => file.endsWith('.js'));
  t.true(bundles.includes('agent/main.js') && bundles.includes('helper/main.js'), 'the bundles are built');
  const wide = bundles.flatMap((file) =>
    readFileSync(`${dist}${file}`, 'utf8')
      .split('\n')
      .flatMap((line, i) => (/[^\x00-\xff]/.test(line) ? [`${file}:${i + 1}: ${line.trim().slice(0, 80)}`] : [])),
  );
  t.deepEqual(wide, []);
});
