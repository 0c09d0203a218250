/** The connected worker sockets: the relay pushes chat activity and cancels to all of them. */
import type { WorkerServerEvent } from "../protocol.ts";
import { closeQuietly, sendBounded } from "./_ws.ts";

/** One connected worker socket. */
export interface WorkerPeer {
  socket: WebSocket;
  workerId: string;
}

export class WorkerHub {
  #peers = new Set<WorkerPeer>();

  /** `maxBufferedBytes`: what a worker socket may hold unsent before it is closed (1013). */
  constructor(readonly maxBufferedBytes: number) {}

  /** Workers connected now. */
  get size(): number {
    return this.#peers.size;
  }

  /** Adds a connected worker socket. */
  add(peer: WorkerPeer): void {
    this.#peers.add(peer);
  }

  /** Removes a worker socket (idempotent). */
  remove(peer: WorkerPeer): void {
    this.#peers.delete(peer);
  }

  /** Sends one event to one worker; a worker that stopped reading is closed with 1013. */
  send(peer: WorkerPeer, event: WorkerServerEvent): void {
    this.#send(peer, JSON.stringify(event));
  }

  /** Sends one event to every worker; claims decide which one takes the work. */
  broadcast(event: WorkerServerEvent): void {
    const data = JSON.stringify(event);
    for (const peer of this.#peers) this.#send(peer, data);
  }

  /** Closes every worker socket (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const peer of this.#peers) closeQuietly(peer.socket, code, reason);
    this.#peers.clear();
  }

  #send(peer: WorkerPeer, data: string): void {
    // Dropped from the set at once, so later broadcasts skip it before its close arrives.
    if (!sendBounded(peer.socket, data, this.maxBufferedBytes)) this.#peers.delete(peer);
  }
}
