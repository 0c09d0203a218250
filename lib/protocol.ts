/**
 * The wire protocol, written once: every HTTP body and WebSocket event exchanged by the
 * relay, the worker and the page is a zod schema here (SPEC §3). The route names and the
 * original JSON shapes are kept; fields beyond the original are optional or additive.
 */
import { z } from "zod";

// ---------------------------------------------------------------------------------------
// Shared atoms

/** Chat ids come from the page (one per tab); URL-safe so they can sit in paths. */
export const ChatId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, {
  message: "chatId must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
});
/** Ids the relay mints (messages, turns, leases). */
export const Id = z.string().regex(/^[A-Za-z0-9_-]{1,80}$/, { message: "malformed id" });
/** Worker ids are chosen by each worker process, e.g. "gpu-box-1-4f2a". */
export const WorkerId = z.string().regex(/^[A-Za-z0-9_.:-]{1,80}$/, {
  message: "workerId must be 1-80 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'",
});
const IsoTime = z.string();

export const Sender = z.enum(["Visitor", "Terra"]);
export type Sender = z.infer<typeof Sender>;

export const WorkerStateName = z.enum(["idle", "queued", "processing", "responded", "error"]);
export type WorkerStateName = z.infer<typeof WorkerStateName>;

export const ComponentStatus = z.enum(["online", "degraded", "offline", "unknown"]);
export type ComponentStatus = z.infer<typeof ComponentStatus>;

/** What a streamed chunk carries: the answer, the model's reasoning, or tool activity. */
export const ChunkKind = z.enum(["answer", "reasoning", "tool"]);
export type ChunkKind = z.infer<typeof ChunkKind>;

/** `{error, code}`: the body of every error response and socket error event. */
export const ErrorBody = z.object({ error: z.string(), code: z.string() });
export type ErrorBody = z.infer<typeof ErrorBody>;

// ---------------------------------------------------------------------------------------
// Stored records as they appear on the wire

/** A chat message; `seq` orders it among the chat's events, `replyTo` links Terra's answer. */
export const ChatMessage = z.object({
  id: Id,
  chatId: ChatId,
  sender: Sender,
  content: z.string(),
  createdAt: IsoTime,
  seq: z.number().int().nonnegative(),
  /** Terra only: the visitor message this reply answers. */
  replyTo: z.string().optional(),
  /** Terra only: the visitor stopped the answer; `content` is what was generated. */
  stopped: z.boolean().optional(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

/** A turn as a worker sees it after claiming it: answer `messageId` while the lease holds. */
export const Turn = z.object({
  id: Id,
  chatId: ChatId,
  messageId: Id,
  leaseId: Id,
  leaseExpiresAt: IsoTime,
  attempt: z.number().int().positive(),
  cancelRequested: z.boolean(),
});
export type Turn = z.infer<typeof Turn>;

/** One link of the status chain shown to visitors. */
export const ChainLink = z.object({
  name: z.enum(["frontend", "relay", "worker", "agent", "llm"]),
  status: ComponentStatus,
  detail: z.string(),
  checkedAt: IsoTime.nullable(),
  latencyMs: z.number().nullable(),
});
export type ChainLink = z.infer<typeof ChainLink>;

/** A component report sent by the worker. */
export const ComponentReport = z.object({
  status: ComponentStatus,
  detail: z.string().max(500).default(""),
  checkedAt: IsoTime.optional(),
  latencyMs: z.number().nonnegative().nullable().optional(),
});
export type ComponentReport = z.infer<typeof ComponentReport>;

// ---------------------------------------------------------------------------------------
// HTTP bodies

/** `POST /api/session`. */
export const SessionRequest = z.object({ accessCode: z.string().min(1).max(512) });
export const SessionResponse = z.object({
  token: z.string(),
  expiresAt: IsoTime,
  maxMessageLength: z.number().int().positive(),
});
export type SessionResponse = z.infer<typeof SessionResponse>;

/** `POST /api/chat/:chatId/messages` (visitor). Length is checked against config. */
export const VisitorMessageRequest = z.object({
  content: z.string(),
  accessCode: z.string().max(512).optional(),
});

/** `POST /api/chat/:chatId/agent` (worker): Terra's final reply. */
export const AgentReplyRequest = z.object({
  content: z.string(),
  /** The visitor message answered; makes the post idempotent. Legacy workers omit it. */
  replyTo: Id.optional(),
  leaseId: Id.optional(),
  stopped: z.boolean().optional(),
});
export type AgentReplyRequest = z.infer<typeof AgentReplyRequest>;

/** `POST /api/chat/:chatId/agent-chunk` (worker): one streamed piece. */
export const AgentChunkRequest = z.object({
  content: z.string(),
  done: z.boolean().default(false),
  kind: ChunkKind.default("answer"),
  /** Position of `content` in the text of its kind; lets a worker resend a snapshot. */
  offset: z.number().int().nonnegative().optional(),
  turnId: Id.optional(),
  /** When given, a chunk from a worker that lost its lease is refused. */
  leaseId: Id.optional(),
});
export type AgentChunkRequest = z.input<typeof AgentChunkRequest>;

/** `POST /api/chat/:chatId/worker-state` (worker). */
export const WorkerStateRequest = z.object({
  state: WorkerStateName,
  detail: z.string().max(500).optional(),
});
export type WorkerStateRequest = z.infer<typeof WorkerStateRequest>;

/** `POST /api/worker/status` (worker): feeds `/api/health`. */
export const WorkerStatusRequest = z.object({
  agentApi: ComponentReport,
  llm: ComponentReport,
  workerId: WorkerId.optional(),
});
export type WorkerStatusRequest = z.infer<typeof WorkerStatusRequest>;

/** `POST /api/worker/turns/claim`: take the next turn (of `chatId`, if given). */
export const ClaimRequest = z.object({ workerId: WorkerId, chatId: ChatId.optional() });
export const ClaimResponse = z.object({ turn: Turn.nullable() });
export type ClaimResponse = z.infer<typeof ClaimResponse>;

/** `POST /api/worker/turns/:turnId/renew` and `/release`. */
export const LeaseRequest = z.object({ leaseId: Id });
export const RenewResponse = z.object({
  leaseExpiresAt: IsoTime,
  cancelRequested: z.boolean(),
});
export type RenewResponse = z.infer<typeof RenewResponse>;

/** `GET /api/chats/open`. */
export const OpenChatsResponse = z.object({ chatIds: z.array(ChatId) });

/** `GET /api/health`. */
export const HealthResponse = z.object({
  relay: ComponentStatus,
  workerReady: z.boolean(),
  workerLastSeenAt: IsoTime.nullable(),
  workerStatus: z.object({ agentApi: ComponentReport, llm: ComponentReport }).nullable(),
  chain: z.array(ChainLink),
});
export type HealthResponse = z.infer<typeof HealthResponse>;

// ---------------------------------------------------------------------------------------
// Visitor socket (`WS /api/chat?chatId=…&since=N`)

export const MessageEvent = ChatMessage.extend({ type: z.literal("message") });
export type MessageEvent = z.infer<typeof MessageEvent>;

export const WorkerStateEvent = z.object({
  type: z.literal("workerState"),
  chatId: ChatId,
  state: WorkerStateName,
  detail: z.string(),
  updatedAt: IsoTime,
  seq: z.number().int().nonnegative(),
  /** While queued: distinct chats ahead of this one (SPEC §3 queue position). */
  queuePosition: z.number().int().nonnegative().optional(),
});
export type WorkerStateEvent = z.infer<typeof WorkerStateEvent>;

export const AssistantChunkEvent = z.object({
  type: z.literal("assistantChunk"),
  chatId: ChatId,
  content: z.string(),
  done: z.boolean(),
  emittedAt: IsoTime,
  seq: z.number().int().nonnegative(),
  kind: ChunkKind,
  /** Where `content` starts in the text of this kind for this turn (0 for snapshots). */
  offset: z.number().int().nonnegative(),
  /** The visitor message being answered, or null for a legacy worker outside a turn. */
  turnId: z.string().nullable(),
});
export type AssistantChunkEvent = z.infer<typeof AssistantChunkEvent>;

/** Sent after the replay of a (re)connect; live events follow. */
export const ReadyEvent = z.object({
  type: z.literal("ready"),
  chatId: ChatId,
  seq: z.number().int().nonnegative(),
});
export const SocketErrorEvent = ErrorBody.extend({ type: z.literal("error") });
export const PongEvent = z.object({ type: z.literal("pong") });

export const VisitorServerEvent = z.discriminatedUnion("type", [
  MessageEvent,
  WorkerStateEvent,
  AssistantChunkEvent,
  ReadyEvent,
  SocketErrorEvent,
  PongEvent,
]);
export type VisitorServerEvent = z.infer<typeof VisitorServerEvent>;
/** Events that belong to a chat's history and carry its sequence number. */
export type ChatEvent = MessageEvent | WorkerStateEvent | AssistantChunkEvent;

/**
 * Visitor → relay: only `ping`. Credentials go in the handshake (bearer header, the
 * `terrarium.token.<token>` subprotocol, or a legacy `accessCode` query), never in a frame.
 */
export const VisitorClientEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ping") }),
]);
export type VisitorClientEvent = z.infer<typeof VisitorClientEvent>;

// ---------------------------------------------------------------------------------------
// Worker socket (`WS /api/worker/updates`)

export const ChatActivityEvent = z.object({
  type: z.literal("chat_activity"),
  chatId: ChatId,
  messageId: z.string(),
  emittedAt: IsoTime,
});
export type ChatActivityEvent = z.infer<typeof ChatActivityEvent>;

/** The visitor pressed stop: abort the model request for `turnId` and post what you have. */
export const CancelEvent = z.object({
  type: z.literal("cancel"),
  chatId: ChatId,
  turnId: Id,
  emittedAt: IsoTime,
});
export type CancelEvent = z.infer<typeof CancelEvent>;

/** The answer to a worker request that carried a `requestId`. */
export const AckEvent = z.object({
  type: z.literal("ack"),
  requestId: z.string(),
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.string().optional(),
  code: z.string().optional(),
});
export type AckEvent = z.infer<typeof AckEvent>;

export const WorkerHelloEvent = z.object({
  type: z.literal("hello"),
  leaseMs: z.number().int().positive(),
  maxFrameBytes: z.number().int().positive(),
});

export const WorkerServerEvent = z.discriminatedUnion("type", [
  ChatActivityEvent,
  CancelEvent,
  AckEvent,
  WorkerHelloEvent,
  SocketErrorEvent,
  PongEvent,
]);
export type WorkerServerEvent = z.infer<typeof WorkerServerEvent>;

const RequestId = z.string().min(1).max(80);

/** Worker → relay: the HTTP worker routes, as socket messages. */
export const WorkerClientEvent = z.discriminatedUnion("type", [
  ClaimRequest.extend({ type: z.literal("claim"), requestId: RequestId }),
  LeaseRequest.extend({ type: z.literal("renew"), requestId: RequestId, turnId: Id }),
  LeaseRequest.extend({ type: z.literal("release"), requestId: RequestId, turnId: Id }),
  AgentChunkRequest.extend({ type: z.literal("chunk"), chatId: ChatId }),
  WorkerStateRequest.extend({
    type: z.literal("state"),
    chatId: ChatId,
    requestId: RequestId.optional(),
  }),
  AgentReplyRequest.extend({ type: z.literal("reply"), chatId: ChatId, requestId: RequestId }),
  WorkerStatusRequest.extend({ type: z.literal("status") }),
  z.object({ type: z.literal("ping") }),
]);
export type WorkerClientEvent = z.infer<typeof WorkerClientEvent>;
