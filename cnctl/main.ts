// cnctl's entry point (bin/cnctl runs the build of this file).
import { exitWhenDone } from '../protocol/cli.js';
import { run } from './cli.js';

exitWhenDone('cnctl', run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }));
