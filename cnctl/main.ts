// cnctl's entry point (bin/cnctl runs the build of this file).
import { exitWhenDone } from '../protocol/cli.js';
import { writeStderr } from '../protocol/journal.js';
import { run } from './cli.js';

// stderr's lines are errors in the journal when cnctl runs in a unit (ExecStartPre=cnctl wait)
const stderr = { write: (text: string) => writeStderr(text), isTTY: process.stderr.isTTY };
exitWhenDone('cnctl', run(process.argv.slice(2), { stdout: process.stdout, stderr, env: process.env }));
