/**
 * In-memory fan-out of chat events to visitor sockets. Each event is serialised once per
 * broadcast. A socket whose send buffer passes the cap (a visitor that stopped reading) is
 * dropped instead of slowing the others or growing memory without bound. The hub also holds
 * the socket slots that handshakes reserve (per client key, and pending relay-wide).
 */
import type { ChatEvent } from "../protocol.ts";
import { CLOSE_TRY_LATER, closeQuietly, sendBounded, TOO_SLOW_REASON } from "./_ws.ts";
import type { LegacyFrames } from "./legacy_frames.ts";
import { SocketSlots } from "./socket_slots.ts";

/** One visitor socket attached to a chat. */
export interface VisitorPeer {
  socket: WebSocket;
  ip: string;
  /** Events held back while the replay of a (re)connect is being sent; null once live. */
  backlog: string[] | null;
  backlogSeqs: number[];
  /** Set for a socket of the original page (`accessCode` query): it gets original frames. */
  legacy: LegacyFrames | null;
}

export interface VisitorHubOptions {
  maxBufferedBytes: number;
  maxSocketsPerChat: number;
  /** Sockets per client key (`MAX_SOCKETS_PER_IP`), counted from the handshake on. */
  maxSocketsPerIp: number;
  /** Sockets relay-wide that are upgraded but not yet open (`MAX_PENDING_SOCKETS`). */
  maxPendingSockets: number;
  /** Called with each dropped peer (metrics, logs). */
  onDrop?: (peer: VisitorPeer, reason: string) => void;
}

/** Backlog entries allowed while a replay is in flight before the socket is dropped. */
const MAX_BACKLOG = 10_000;

export class VisitorHub {
  /** Slots reserved at the handshake, before the upgrade. */
  readonly slots: SocketSlots;
  /** Called when the last socket of a chat detached (a shared fanout unsubscribes). */
  onChatEmpty: ((chatId: string) => void) | null = null;
  #chats = new Map<string, Set<VisitorPeer>>();
  #options: VisitorHubOptions;
  #count = 0;

  constructor(options: VisitorHubOptions) {
    this.#options = options;
    this.slots = new SocketSlots(options.maxSocketsPerIp, options.maxPendingSockets);
  }

  /** Sockets currently attached. */
  get size(): number {
    return this.#count;
  }

  /** Open sockets per chat (the metrics snapshot). */
  countsByChat(): Map<string, number> {
    return new Map([...this.#chats].map(([chatId, peers]) => [chatId, peers.size]));
  }

  /** Why a new socket for `chatId` may not attach, or null when it may. */
  refusal(chatId: string): string | null {
    if ((this.#chats.get(chatId)?.size ?? 0) >= this.#options.maxSocketsPerChat) {
      return "Too many open sockets for this chat";
    }
    return null;
  }

  /** Attaches a socket in replay mode: live events queue in its backlog until `goLive`. */
  attach(
    chatId: string,
    socket: WebSocket,
    ip: string,
    legacy: LegacyFrames | null = null,
  ): VisitorPeer {
    const peer: VisitorPeer = { socket, ip, backlog: [], backlogSeqs: [], legacy };
    let peers = this.#chats.get(chatId);
    if (!peers) this.#chats.set(chatId, peers = new Set());
    peers.add(peer);
    this.#count++;
    return peer;
  }

  /** Sends the backlog events newer than `sentSeq` and switches the peer to live delivery. */
  goLive(peer: VisitorPeer, sentSeq: number): void {
    const backlog = peer.backlog ?? [];
    const seqs = peer.backlogSeqs;
    peer.backlog = null;
    peer.backlogSeqs = [];
    for (let i = 0; i < backlog.length; i++) {
      if (seqs[i]! > sentSeq) this.#send(peer, backlog[i]!);
    }
  }

  /** Detaches a socket (idempotent). */
  detach(chatId: string, peer: VisitorPeer): void {
    const peers = this.#chats.get(chatId);
    if (!peers?.delete(peer)) return;
    this.#count--;
    if (peers.size > 0) return;
    this.#chats.delete(chatId);
    this.onChatEmpty?.(chatId);
  }

  /**
   * Delivers an event to every socket of its chat (only to legacy ones with `legacyOnly`);
   * returns how many sockets it went to.
   */
  broadcast(event: ChatEvent, legacyOnly = false): number {
    const peers = this.#chats.get(event.chatId);
    if (!peers) return 0;
    const count = peers.size;
    const data = JSON.stringify(event);
    for (const peer of peers) {
      const frame = peer.legacy ? peer.legacy.frame(event) : legacyOnly ? null : data;
      if (frame === null) continue;
      if (peer.backlog) {
        if (peer.backlog.length >= MAX_BACKLOG) this.#drop(event.chatId, peer, "backlog full");
        else {
          peer.backlog.push(frame);
          peer.backlogSeqs.push(event.seq);
        }
        continue;
      }
      if (!this.#send(peer, frame)) this.#drop(event.chatId, peer, "send buffer full");
    }
    return count;
  }

  /** Sends raw data to one peer; false when it was too far behind and is now closed (1013). */
  send(peer: VisitorPeer, data: string): boolean {
    return this.#send(peer, data);
  }

  /** Closes every socket of `chatId` with `code`; their pages reconnect and resume. */
  closeChat(chatId: string, code: number, reason: string): void {
    for (const peer of this.#chats.get(chatId) ?? []) {
      this.detach(chatId, peer);
      closeQuietly(peer.socket, code, reason);
    }
  }

  /** Closes every socket with `code` (1001 on shutdown). */
  closeAll(code: number, reason: string): void {
    for (const [chatId, peers] of this.#chats) {
      for (const peer of peers) {
        this.detach(chatId, peer);
        closeQuietly(peer.socket, code, reason);
      }
    }
  }

  #send(peer: VisitorPeer, data: string): boolean {
    return sendBounded(peer.socket, data, this.#options.maxBufferedBytes);
  }

  #drop(chatId: string, peer: VisitorPeer, reason: string): void {
    this.detach(chatId, peer);
    this.#options.onDrop?.(peer, reason);
    closeQuietly(peer.socket, CLOSE_TRY_LATER, TOO_SLOW_REASON);
  }
}
