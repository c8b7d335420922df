// Reads the agent's REST API from inside the vm namespace for the benchmark, which runs outside
// it: one URL path per input line, one JSON line back ({"status":200,"body":...} or {"error":...}).
import { get } from 'node:http';
import { createInterface } from 'node:readline';

const base = process.argv[2] ?? 'http://127.0.0.1:5209';
for await (const path of createInterface({ input: process.stdin })) {
  const answer = await new Promise((resolve) => {
    get(`${base}${path}`, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode, body: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode, body: text });
        }
      });
    }).on('error', (error) => resolve({ error: error.message }));
  });
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
