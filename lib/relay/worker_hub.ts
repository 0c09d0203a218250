/** The connected worker sockets: the relay pushes chat activity and cancels to all of them. */
import type { WorkerServerEvent } from "../protocol.ts";
import { closeQuietly } from "./visitor_hub.ts";

/** One connected worker socket. */
export interface WorkerPeer {
  socket: WebSocket;
  workerId: string;
}

export class WorkerHub {
  #peers = new Set<WorkerPeer>();

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

  /** Sends one event to one worker. */
  send(peer: WorkerPeer, event: WorkerServerEvent): void {
    if (peer.socket.readyState === WebSocket.OPEN) peer.socket.send(JSON.stringify(event));
  }

  /** Sends one event to every worker; claims decide which one takes the work. */
  broadcast(event: WorkerServerEvent): void {
    const data = JSON.stringify(event);
    for (const peer of this.#peers) {
      if (peer.socket.readyState === WebSocket.OPEN) peer.socket.send(data);
    }
  }

  /** Closes every worker socket (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const peer of this.#peers) closeQuietly(peer.socket, code, reason);
    this.#peers.clear();
  }
}
