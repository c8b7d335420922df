// Whether a method's params match its schema (methods.ts): one check function per method, no
// error reporting (explain.ts says what is wrong, protocol/validate.ts).
//
// Here the checks are compiled from the schemas when this module loads. The helper's bundle does
// not contain this file: tools/build.mjs puts in its place the same checks generated at build
// time (TypeCompiler.Code, tools/params-checks.mjs), so the helper compiles nothing at start and
// carries no schema library; test/unit/params-checks.test.ts holds the two to the same answers.
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { METHODS, type MethodName } from './methods.js';
import { METHOD_NAMES } from './names.js';

export type ParamsCheck = (params: unknown) => boolean;

const checks = {} as Record<MethodName, ParamsCheck>;
for (const name of METHOD_NAMES) {
  const compiled = TypeCompiler.Compile(METHODS[name].params);
  checks[name] = (params) => compiled.Check(params);
}
export const PARAMS_CHECKS: Readonly<Record<MethodName, ParamsCheck>> = checks;
