// A process that drives netlink/ from inside a network namespace for the netlink tests:
// started with `ip netns exec NS node --import=tsx netlink-runner.ts [agent|helper]` (which
// socket its requests go through: netlink/socket.ts or netlink/sync-socket.ts), it reads one JSON
// command per line on stdin and answers one JSON line per command on stdout (events and
// overflows are counted, and reported on request). The test process itself stays in the
// host namespace and never opens a netlink socket there.
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { watchKernel, type KernelWatch } from '../../netlink/events.js';
import { RTM } from '../../netlink/messages.js';
import { ALL_STATE_PARTS, readKernelState, type RouteFilter } from '../../netlink/read.js';
import { RtnlSocket } from '../../netlink/socket.js';
import { SyncRtnlSocket } from '../../netlink/sync-socket.js';
import { executeOperations } from '../../netlink/write.js';
import type { Operation } from '../../protocol/operations.js';

export type RunnerCommand =
  | { id: number; cmd: 'read'; routeFilters?: RouteFilter[] }
  | { id: number; cmd: 'route-dump'; protocol: number; table?: number }
  | { id: number; cmd: 'batch-unaligned'; ifindex: number; addresses: string[] }
  | { id: number; cmd: 'apply'; ops: Operation[] }
  | { id: number; cmd: 'watch'; receiveBufferBytes?: number }
  | { id: number; cmd: 'stats' }
  | { id: number; cmd: 'busy-until'; path: string; maxIterations: number }
  | { id: number; cmd: 'exit' };

const sock =
  process.argv[2] === 'helper' ? new SyncRtnlSocket() : new RtnlSocket({ onError: (error) => process.stderr.write(`socket error: ${error.message}\n`) });
let watch: KernelWatch | undefined;
const stats = { events: 0, overflows: 0, errors: 0, receiveBufferBytes: 0 };

function answer(id: number, result: unknown): void {
  process.stdout.write(`${JSON.stringify({ id, result })}\n`);
}

async function handle(command: RunnerCommand): Promise<void> {
  switch (command.cmd) {
    case 'read':
      return answer(command.id, await readKernelState(sock, ALL_STATE_PARTS, command.routeFilters));
    case 'batch-unaligned': {
      // RTM_NEWADDR requests whose last attribute (IFA_PROTO, one byte) is left unpadded: 37
      // bytes each, so every following message needs NLMSG_ALIGN padding in the datagram
      const requests = command.addresses.map((address) => {
        const header = Buffer.alloc(8);
        header.writeUInt8(2, 0); // AF_INET
        header.writeUInt8(32, 1);
        header.writeUInt32LE(command.ifindex, 4);
        const local = Buffer.from([4 + 4, 0, 2 /* IFA_LOCAL */, 0, ...address.split('.').map(Number)]);
        const proto = Buffer.from([4 + 1, 0, 11 /* IFA_PROTO */, 0, 201]);
        return { type: RTM.NEWADDR, payload: [header, local, proto], flags: 0x400 | 0x200 /* CREATE | EXCL */ };
      });
      const errors = await sock.batch(requests);
      return answer(command.id, errors.map((error) => error?.code ?? 'OK'));
    }
    case 'route-dump': {
      // what the kernel itself sends for a protocol-filtered route dump, before any filtering here
      const request = Buffer.alloc(12);
      request.writeUInt8(command.protocol, 5);
      // with a table: the tables (rtm_table) of what came back, instead of the protocols
      if (command.table !== undefined) request.writeUInt8(command.table, 4);
      const messages = await sock.dump(RTM.GETROUTE, [request]);
      const field = command.table !== undefined ? 4 : 5;
      return answer(command.id, messages.filter((m) => m.type === RTM.NEWROUTE).map((m) => m.data.readUInt8(field)));
    }
    case 'apply':
      return answer(command.id, await executeOperations(sock, command.ops));
    case 'watch':
      watch = watchKernel({
        receiveBufferBytes: command.receiveBufferBytes,
        onEvent: () => {
          stats.events++;
        },
        onOverflow: () => {
          stats.overflows++;
        },
        onError: () => {
          stats.errors++;
        },
      });
      stats.receiveBufferBytes = watch.receiveBufferBytes;
      return answer(command.id, stats);
    case 'stats':
      return answer(command.id, stats);
    case 'busy-until': {
      // answer first, then keep the event loop blocked: nothing reads the event socket meanwhile
      answer(command.id, 'busy');
      for (let i = 0; i < command.maxIterations && !existsSync(command.path); i++) {
        const until = Date.now() + 5;
        while (Date.now() < until) {
          /* spin */
        }
      }
      return;
    }
    case 'exit':
      watch?.close();
      sock.close();
      answer(command.id, 'bye');
      process.exit(0);
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as RunnerCommand;
  handle(command).catch((error: unknown) => {
    process.stdout.write(`${JSON.stringify({ id: command.id, error: String(error) })}\n`);
  });
});
