// Who holds the REST API's connections, per pool (a TCP listener, or one class of user on the
// Unix socket): how many may be open, how long one may go without a complete request or leave an
// answer unread, and who gives way when the pool is full. Node's own cap turns the new connection away however idle the old
// ones are, and its timeouts run only in a server that listens itself, so the API's listeners
// admit connections here and every deadline is a timer of ours.
import type { Socket } from 'node:net';
import { bytesWaiting } from '../../../netlink/libc.js';

export interface PoolLimits {
  /** connections open at once at which one waiting for a request gives way to a new one */
  maxIdle: number;
  /** connections open at once at all: past maxIdle only when none is waiting for a request */
  maxConnections: number;
  /** ms from connecting to a complete request line and headers */
  headersTimeout: number;
  /** ms from an answer to the next complete request on a kept-alive connection */
  keepAliveTimeout: number;
  /** ms an answer may go without being read (no request in the meantime ends) */
  responseTimeout: number;
}

/** Why the pool closed a connection: to make room for a new one, instead of a new one, or a deadline. */
export type CloseReason = 'evicted' | 'refused' | 'timeout';

export type OnClose = (reason: CloseReason) => void;

/**
 * waiting: no request in hand (just connected, trickling one in, or kept alive after an answer);
 * answering: at least one request being answered; closing: told 408, on its way out.
 */
type Phase = 'waiting' | 'answering' | 'closing';

const REQUEST_TIMEOUT_ANSWER = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
/** How long a connection told 408 has to read it before it is destroyed. */
const CLOSING_GRACE_MS = 1_000;

const bySocket = new WeakMap<Socket, Connection>();

/** The pool's record of a socket it admitted, for the HTTP server to report requests to. */
export function connectionOf(socket: Socket): Connection | undefined {
  return bySocket.get(socket);
}

export class Connection {
  phase: Phase = 'waiting';
  /** when the connection began waiting: the one waiting longest gives way first */
  waitingSince = Date.now();
  private inFlight = 0;
  private gone = false;
  /** bytes read when the connection began waiting; more by the deadline is a request cut short */
  private readAtWait = 0;
  private timer: NodeJS.Timeout;

  constructor(
    readonly socket: Socket,
    private readonly limits: PoolLimits,
    private readonly pool: ConnectionPool,
  ) {
    this.timer = setTimeout(() => this.deadline(), limits.headersTimeout).unref();
  }

  /** The HTTP server has a complete request from this connection. */
  requestStarted(): void {
    if (this.gone || this.phase === 'closing') return;
    this.inFlight++;
    this.phase = 'answering';
    this.arm(this.limits.responseTimeout);
  }

  /** One of its answers was sent (or abandoned); with none left the connection waits again. */
  requestEnded(): void {
    if (this.gone || this.phase !== 'answering') return;
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (this.inFlight > 0) {
      this.arm(this.limits.responseTimeout);
      return;
    }
    this.phase = 'waiting';
    this.waitingSince = Date.now();
    this.readAtWait = this.socket.bytesRead;
    this.arm(this.limits.keepAliveTimeout);
  }

  /** Destroys the socket and forgets the connection. */
  close(): void {
    if (this.gone) return;
    this.gone = true;
    clearTimeout(this.timer);
    this.pool.forget(this);
    this.socket.destroy();
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.deadline(), ms).unref();
  }

  private deadline(): void {
    if (this.phase === 'waiting' && this.socket.bytesRead > this.readAtWait && this.socket.writable) {
      // part of a request came: say why the connection ends, then end it whether or not it is read
      this.phase = 'closing';
      this.waitingSince = 0;
      this.pool.closedByDeadline();
      this.socket.end(REQUEST_TIMEOUT_ANSWER);
      this.timer = setTimeout(() => this.close(), CLOSING_GRACE_MS).unref();
      return;
    }
    this.pool.closedByDeadline();
    this.close();
  }
}

/** The connections of one listener, or of one class of user on the Unix socket. */
export class ConnectionPool {
  private readonly open = new Set<Connection>();

  constructor(
    private readonly limits: PoolLimits,
    private readonly onClose: OnClose = () => {},
    /** bytes received and not yet read (FIONREAD); tests give their own */
    private readonly waiting: (socket: Socket) => number = bytesWaiting,
  ) {}

  get size(): number {
    return this.open.size;
  }

  /**
   * Takes a freshly accepted socket. At maxIdle one of the connections waiting for a request
   * gives way. When none is waiting (every one is answering a request or has one arriving) the
   * new socket comes in over that cap, a burst of requests being no reason to turn a client
   * away, up to maxConnections, where it is closed instead. Returns whether it was admitted.
   */
  admit(socket: Socket): boolean {
    const { maxIdle, maxConnections } = this.limits;
    if (this.open.size >= maxIdle) {
      const victim = this.toGiveWay();
      if (victim) {
        victim.close();
        this.onClose('evicted');
      } else if (this.open.size >= maxConnections) {
        socket.destroy();
        this.onClose('refused');
        return false;
      }
    }
    const connection = new Connection(socket, this.limits, this);
    this.open.add(connection);
    bySocket.set(socket, connection);
    socket.once('close', () => connection.close());
    return true;
  }

  /** Closes every connection (the API is stopping). */
  closeAll(): void {
    for (const connection of [...this.open]) connection.close();
  }

  /** @internal a connection's deadline passed */
  closedByDeadline(): void {
    this.onClose('timeout');
  }

  /** @internal */
  forget(connection: Connection): void {
    if (this.open.delete(connection)) bySocket.delete(connection.socket);
  }

  /**
   * The connection to close for room, among those not answering a request: one told 408
   * already; else the one waiting longest that has sent nothing at all, else the one waiting
   * longest (a request trickling in, or kept alive after an answer). A connection whose request
   * is in the kernel but not read yet (a burst of connections can be accepted before it is) is
   * left alone: it is about to be answered.
   */
  private toGiveWay(): Connection | undefined {
    for (const c of this.open) if (c.phase === 'closing') return c;
    const talking: Connection[] = [];
    // one that has sent nothing never waited anew, so the first in admission order has waited longest
    for (const c of this.open) {
      if (c.phase !== 'waiting') continue;
      if (c.socket.bytesRead > 0) talking.push(c);
      else if (this.waiting(c.socket) === 0) return c;
    }
    talking.sort((a, b) => a.waitingSince - b.waitingSince);
    return talking.find((c) => this.waiting(c.socket) === 0);
  }
}
