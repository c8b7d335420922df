// cnctl's entry point (bin/cnctl imports the build of this file).
import { run } from './cli.js';

process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
