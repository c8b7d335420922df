// Run as a refused user by helper-input-cases.ts: reads messages (one per line) on stdin and
// sends them to the helper socket given as the argument, 20 per connection, then prints what
// came back as JSON: connections, how many were refused with a reason or closed without a word,
// how many requests got a result.
import { createConnection } from 'node:net';

const socketPath = process.argv[2]!;
const input = await new Promise<string>((resolve) => {
  let text = '';
  process.stdin.setEncoding('latin1');
  process.stdin.on('data', (d: string) => (text += d));
  process.stdin.on('end', () => resolve(text));
});
const messages = input.split('\n').filter(Boolean);
let connections = 0;
let refused = 0;
/** closed before the refusal line arrived (the helper closes as our write races in) */
let reset = 0;
let results = 0;
let sample = '';
for (let i = 0; i < messages.length; i += 20) {
  connections++;
  const answer = await new Promise<string>((resolve) => {
    let buffer = '';
    const socket = createConnection(socketPath);
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('data', (d: Buffer) => (buffer += d.toString()));
    socket.on('error', () => resolve(buffer || 'error'));
    socket.on('close', () => resolve(buffer));
    socket.write(messages.slice(i, i + 20).join('\n') + '\n', () => socket.end());
  });
  if (/connection refused/.test(answer)) refused++;
  else if (answer === '' || answer === 'error') reset++;
  results += (answer.match(/"result"/g) ?? []).length;
  sample ||= answer.trim().slice(0, 160);
}
process.stdout.write(JSON.stringify({ connections, refused, reset, results, sample }));
