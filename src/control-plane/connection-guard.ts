/**
 * Bounds what unauthenticated clients can hold open on both ports, before any request
 * is read: a cap on open connections in all and per client address (one guard shared by
 * the REST and the gRPC port, since they share the process's file descriptors), and a
 * deadline for a connection's first bytes. The HTTP servers add their own limits on
 * top (headers timeout, keep-alive, HTTP/2 idle sessions and streams per connection).
 */
import type { Socket } from "node:net";

export interface ConnectionLimits {
  /** Open connections on both ports together (FABRIC_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Open connections per client address (FABRIC_MAX_CONNECTIONS_PER_ADDRESS). */
  maxPerAddress: number;
  /** A connection that sends nothing for this long is closed (FABRIC_HEADERS_TIMEOUT). */
  firstBytesTimeoutMs: number;
  /** An HTTP/2 session, or a kept-alive HTTP/1.1 connection, with no request in flight for this long is closed (FABRIC_IDLE_TIMEOUT). */
  idleTimeoutMs: number;
  /** Concurrent HTTP/2 streams per connection (FABRIC_MAX_STREAMS_PER_CONNECTION). */
  maxStreamsPerConnection: number;
}

export const defaultConnectionLimits: ConnectionLimits = {
  maxConnections: 8192,
  maxPerAddress: 1024,
  firstBytesTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  maxStreamsPerConnection: 100,
};

export interface ConnectionGuard {
  readonly limits: ConnectionLimits;
  /** Counts the socket in, or destroys it when a cap is reached; arms the first-bytes deadline. Returns whether it was admitted. */
  admit(socket: Socket): boolean;
  /** Open connections now (both ports). */
  open(): number;
}

export function createConnectionGuard(limits: ConnectionLimits = defaultConnectionLimits): ConnectionGuard {
  let total = 0;
  const perAddress = new Map<string, number>();
  return {
    limits,
    open: () => total,
    admit(socket) {
      const address = socket.remoteAddress ?? "";
      const mine = perAddress.get(address) ?? 0;
      if (total >= limits.maxConnections || mine >= limits.maxPerAddress) {
        socket.destroy();
        return false;
      }
      total++;
      perAddress.set(address, mine + 1);
      let counted = true;
      const release = () => {
        if (!counted) return;
        counted = false;
        total--;
        const n = (perAddress.get(address) ?? 1) - 1;
        if (n <= 0) perAddress.delete(address);
        else perAddress.set(address, n);
      };
      socket.once("close", release);
      // Silent connections: nothing arrived before the deadline. `bytesRead` is counted
      // also when Node's HTTP/1.1 parser reads the socket natively (no `data` events), and
      // its own headersTimeout only starts with the first bytes.
      const timer = setTimeout(() => {
        if (socket.bytesRead === 0) socket.destroy();
      }, limits.firstBytesTimeoutMs);
      timer.unref();
      socket.once("close", () => clearTimeout(timer));
      return true;
    },
  };
}
