// cnctl's entry point (bin/cnctl runs the build of this file).
import { run } from './cli.js';

run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`cnctl: ${error.stack ?? error.message}\n`);
    process.exitCode = 1;
  },
);
