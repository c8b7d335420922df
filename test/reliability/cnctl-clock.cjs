// Preloaded (node -r) into cnctl by api-cases.ts: prints on stderr how long cnctl took from
// opening its connection to the agent to exiting, so that the siege's bound times the answer
// and not Node's start-up on a busy machine.
const channel = require('node:diagnostics_channel');
let opened;
channel.subscribe('net.client.socket', () => {
  opened ??= performance.now();
});
process.on('exit', () => {
  if (opened !== undefined) process.stderr.write(`cnctl-clock ${Math.round(performance.now() - opened)}\n`);
});
