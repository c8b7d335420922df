// Who holds the REST API's connections, per listener: how many may be open in all and per user,
// how long one may go without a complete request or leave an answer unread, and who gives way
// when a listener is full. Node's own cap turns the new connection away however idle the old
// ones are, and its timeouts run only in a server that listens itself, so the API's listeners
// admit connections here and every deadline is a timer of ours.
import type { Socket } from 'node:net';
import { bytesWaiting } from '../../../netlink/libc.js';

export interface PoolLimits {
  /** connections open at once on the listener at which one waiting for a request gives way to a new one */
  maxIdle: number;
  /** connections open at once on the listener at all: past maxIdle only when none is waiting for a request */
  maxConnections: number;
  /** the two caps per peer uid; undefined where peers have no uid (TCP) */
  maxIdlePerUser?: number;
  maxPerUser?: number;
  /** ms from connecting to a complete request line and headers */
  headersTimeout: number;
  /** ms from an answer to the next complete request on a kept-alive connection */
  keepAliveTimeout: number;
  /** ms an answer may go without being read (no request in the meantime ends) */
  responseTimeout: number;
}

/** Why the pool closed a connection: to make room for a new one, instead of a new one, or a deadline. */
export type CloseReason = 'evicted' | 'refused' | 'timeout';

/** Which limit was met: the per-user cap, the listener's cap, or a connection's own deadline. */
export type CloseCause = 'user' | 'total' | 'deadline';

export type OnClose = (reason: CloseReason, cause: CloseCause, uid: number | undefined) => void;

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
    readonly uid: number | undefined,
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
      this.pool.closedByDeadline(this);
      this.socket.end(REQUEST_TIMEOUT_ANSWER);
      this.timer = setTimeout(() => this.close(), CLOSING_GRACE_MS).unref();
      return;
    }
    this.pool.closedByDeadline(this);
    this.close();
  }
}

/** The connections of one listener. */
export class ConnectionPool {
  private readonly open = new Set<Connection>();
  private readonly perUser = new Map<number, number>();

  constructor(
    private readonly limits: PoolLimits,
    private readonly onClose: OnClose = () => {},
    /** bytes received and not yet read (FIONREAD); tests give their own */
    private readonly waiting: (socket: Socket) => number = bytesWaiting,
  ) {}

  get size(): number {
    return this.open.size;
  }

  /** Open connections of one uid. */
  countOf(uid: number): number {
    return this.perUser.get(uid) ?? 0;
  }

  /**
   * Takes a freshly accepted socket. At a cap for connections waiting for a request, one of them
   * gives way: of the user at its cap, or of the user holding most (listener's cap). When none is
   * waiting (every one is answering a request or has one arriving) the new socket comes in over
   * that cap, a burst of requests being no reason to turn a client away, up to the hard cap, where
   * it is closed instead. Returns whether it was admitted.
   */
  admit(socket: Socket, uid?: number): boolean {
    const { maxIdlePerUser, maxPerUser, maxIdle, maxConnections } = this.limits;
    let cause: CloseCause | undefined;
    let candidate: (c: Connection) => boolean = () => true;
    let full = false;
    if (maxIdlePerUser !== undefined && uid !== undefined && this.countOf(uid) >= maxIdlePerUser) {
      cause = 'user';
      candidate = (c) => c.uid === uid;
      full = this.countOf(uid) >= (maxPerUser ?? maxIdlePerUser);
    } else if (this.open.size >= maxIdle) {
      cause = 'total';
      full = this.open.size >= maxConnections;
    }
    if (cause !== undefined) {
      const victim = this.toGiveWay(candidate);
      if (victim) {
        victim.close();
        this.onClose('evicted', cause, victim.uid);
      } else if (full) {
        socket.destroy();
        this.onClose('refused', cause, uid);
        return false;
      }
    }
    const connection = new Connection(socket, uid, this.limits, this);
    this.open.add(connection);
    if (uid !== undefined) this.perUser.set(uid, this.countOf(uid) + 1);
    bySocket.set(socket, connection);
    socket.once('close', () => connection.close());
    return true;
  }

  /** Closes every connection (the API is stopping). */
  closeAll(): void {
    for (const connection of [...this.open]) connection.close();
  }

  /** @internal a connection's deadline passed */
  closedByDeadline(connection: Connection): void {
    this.onClose('timeout', 'deadline', connection.uid);
  }

  /** @internal */
  forget(connection: Connection): void {
    if (!this.open.delete(connection)) return;
    bySocket.delete(connection.socket);
    const uid = connection.uid;
    if (uid === undefined) return;
    const left = this.countOf(uid) - 1;
    if (left > 0) this.perUser.set(uid, left);
    else this.perUser.delete(uid);
  }

  /**
   * The connection to close for room, among the candidates not answering a request: one told 408
   * already; else, of the user holding most, the one waiting longest that has sent nothing at
   * all, else the one waiting longest (a request trickling in, or kept alive after an answer).
   * A connection whose request is in the kernel but not read yet (a burst of connections can be
   * accepted before it is) is left alone: it is about to be answered.
   */
  private toGiveWay(candidate: (c: Connection) => boolean): Connection | undefined {
    const held = (c: Connection) => (c.uid === undefined ? 0 : this.countOf(c.uid));
    const groups = new Set<number>();
    for (const c of this.open) {
      if (c.phase === 'answering' || !candidate(c)) continue;
      if (c.phase === 'closing') return c;
      groups.add(held(c));
    }
    for (const most of [...groups].sort((a, b) => b - a)) {
      // one that has sent nothing never waited anew, so the first in admission order has waited longest
      const talking: Connection[] = [];
      for (const c of this.open) {
        if (c.phase === 'answering' || !candidate(c) || held(c) !== most) continue;
        if (c.socket.bytesRead > 0) talking.push(c);
        else if (this.waiting(c.socket) === 0) return c;
      }
      talking.sort((a, b) => a.waitingSince - b.waitingSince);
      const quiet = talking.find((c) => this.waiting(c.socket) === 0);
      if (quiet) return quiet;
    }
    return undefined;
  }
}
