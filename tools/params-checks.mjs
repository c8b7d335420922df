// The helper's params checks generated at build time (tools/build.mjs): the same functions
// protocol/params-checks.ts compiles when it loads, written out by typebox's TypeCompiler.Code
// from the schemas in protocol/methods.ts, as the source of a module that replaces that file in
// the bundles. The helper then compiles no validator at start and carries no schema library.
import { build } from 'esbuild';
import { createRequire } from 'node:module';

/** The source of a module exporting PARAMS_CHECKS, one check function per method. */
export async function paramsChecksModule(root) {
  const generator = await build({
    absWorkingDir: root,
    stdin: {
      contents: [
        "import { TypeCompiler } from '@sinclair/typebox/compiler';",
        "import { METHODS } from './protocol/methods.ts';",
        "import { METHOD_NAMES } from './protocol/names.ts';",
        "export const code = METHOD_NAMES.map((name) => [name, TypeCompiler.Code(METHODS[name].params, [], { language: 'javascript' })]);",
      ].join('\n'),
      resolveDir: root,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    logLevel: 'warning',
  });
  const module = { exports: {} };
  new Function('module', 'exports', 'require', generator.outputFiles[0].text)(module, module.exports, createRequire(`${root}/`));
  // each generated body declares its regular expressions, then returns its check function
  const checks = module.exports.code.map(([name, body]) => `  ${JSON.stringify(name)}: (function () {\n${body}\n})(),`);
  return [
    '// Generated at build time by tools/params-checks.mjs from protocol/methods.ts; replaces',
    '// protocol/params-checks.ts in the bundles.',
    `export const PARAMS_CHECKS = {\n${checks.join('\n')}\n};`,
    '',
  ].join('\n');
}
