/**
 * The wire protocol, written once: every HTTP body and WebSocket event exchanged by the
 * relay, the worker and the page is a zod schema here (SPEC §3). The route names and the
 * original JSON shapes are kept; fields beyond the original are optional or additive.
 */
import { z } from "zod";

// ---------------------------------------------------------------------------------------
// Shared atoms

/** What a chat id is (`ChatId`), for checks written without zod (`chunk_frame.ts`). */
export const CHAT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** What an id the relay mints is (`Id`). */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,80}$/;
/** Chat ids come from the page (one per tab); URL-safe so they can sit in paths. */
export const ChatId = z.string().regex(CHAT_ID_PATTERN, {
  message: "chatId must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
});
/** Ids the relay mints (messages, turns, leases). */
export const Id = z.string().regex(ID_PATTERN, { message: "malformed id" });
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

/** What one error code means to a client: its HTTP status and whether to try again. */
export interface ErrorCodeInfo {
  /** The HTTP status it is answered with (and carried in a socket ack). */
  status: number;
  /** Whether the same request may succeed later unchanged (after `Retry-After` if sent). */
  retryable: boolean;
  /** What it means, in one line. */
  doc: string;
}

/**
 * Every error code the relay sends a client (HTTP bodies, socket acks and error events),
 * declared once: a `RelayError` can only be built with one of these, and a socket ack
 * carries the same status and retryability as the HTTP answer would (issue 13).
 */
export const ERROR_CODES = {
  // 400: the request itself is wrong
  bad_chat_id: { status: 400, retryable: false, doc: "The chat id in the path is malformed" },
  bad_turn_id: { status: 400, retryable: false, doc: "The turn id in the path is malformed" },
  bad_path: { status: 400, retryable: false, doc: "The path cannot be decoded" },
  bad_query: { status: 400, retryable: false, doc: "A query parameter is malformed" },
  malformed_json: { status: 400, retryable: false, doc: "The body is not JSON" },
  invalid_body: { status: 400, retryable: false, doc: "The body does not match its schema" },
  empty_message: { status: 400, retryable: false, doc: "A visitor message without text" },
  websocket_required: { status: 400, retryable: false, doc: "A socket route without an upgrade" },
  bad_event: { status: 400, retryable: false, doc: "A socket frame the relay does not know" },
  not_signed: {
    status: 403,
    retryable: false,
    doc: "Work sent over a worker socket that was not signed (HMAC on): use HTTP",
  },
  // 401: credentials
  missing_credentials: { status: 401, retryable: false, doc: "No access code or session token" },
  bad_access_code: { status: 401, retryable: false, doc: "The access code is wrong" },
  bad_token: { status: 401, retryable: false, doc: "The session token is invalid or expired" },
  legacy_access_code_disabled: {
    status: 401,
    retryable: false,
    doc: "An access code on a data route while LEGACY_ACCESS_CODE is off",
  },
  missing_service_token: { status: 401, retryable: false, doc: "No x-service-token header" },
  bad_service_token: { status: 401, retryable: false, doc: "The service token is wrong" },
  bad_signature: { status: 401, retryable: false, doc: "The HMAC signature is wrong or stale" },
  missing_admin_token: { status: 401, retryable: false, doc: "No admin bearer token" },
  bad_admin_token: { status: 401, retryable: false, doc: "The admin token is wrong" },
  // 404: nothing there
  not_found: { status: 404, retryable: false, doc: "No such route or page" },
  admin_disabled: { status: 404, retryable: false, doc: "Admin routes are off (no ADMIN_TOKEN)" },
  unknown_message: { status: 404, retryable: false, doc: "No such visitor message in the chat" },
  unknown_turn: { status: 404, retryable: false, doc: "No such turn in the chat" },
  // 409: the state moved on
  conflict: {
    status: 409,
    retryable: true,
    doc: "A concurrent write changed the record first; the same request may succeed",
  },
  lease_lost: {
    status: 409,
    retryable: false,
    doc: "The worker no longer holds the turn's lease (answered, released or re-claimed)",
  },
  turn_closed: { status: 409, retryable: false, doc: "The turn was already answered or stopped" },
  turn_failed: {
    status: 409,
    retryable: false,
    doc: "The turn failed; it is answered after a retry",
  },
  not_failed: {
    status: 409,
    retryable: false,
    doc: "A retry of a message whose turn did not fail",
  },
  chunk_gap: {
    status: 409,
    retryable: false,
    doc: "A chunk starts past the text the relay has; resend from an earlier offset",
  },
  // 413: too large
  body_too_large: { status: 413, retryable: false, doc: "The body is over BODY_SIZE_LIMIT_BYTES" },
  message_too_long: { status: 413, retryable: false, doc: "A visitor message over the cap" },
  answer_too_long: { status: 413, retryable: false, doc: "A streamed answer over the cap" },
  reply_too_large: { status: 413, retryable: false, doc: "A reply larger than the store allows" },
  // 429: too much, wait (`Retry-After`)
  rate_limited: { status: 429, retryable: true, doc: "Too many requests from this client or chat" },
  locked_out: {
    status: 429,
    retryable: true,
    doc: "Too many wrong access codes: locked out a while",
  },
  auth_busy: { status: 429, retryable: true, doc: "Too many code checks at once; try again soon" },
  too_many_pending: {
    status: 429,
    retryable: true,
    doc: "The chat has unanswered messages at the cap",
  },
  too_many_open_turns: {
    status: 429,
    retryable: true,
    doc: "The client key has unanswered messages at the cap",
  },
  queue_full: { status: 429, retryable: true, doc: "The whole queue is at MAX_OPEN_TURNS" },
  too_many_sockets: { status: 429, retryable: true, doc: "The client key holds its socket cap" },
  // 5xx: the relay's side
  internal: { status: 500, retryable: true, doc: "An unexpected relay error (logged)" },
  sockets_busy: { status: 503, retryable: true, doc: "Too many sockets mid-handshake" },
  store_busy: { status: 503, retryable: true, doc: "The store refused a transaction" },
  store_unavailable: {
    status: 503,
    retryable: true,
    doc: "The store cannot write (full or read-only disk); nothing was stored",
  },
} as const satisfies Record<string, ErrorCodeInfo>;

/** A code of `ERROR_CODES`. */
export type ErrorCode = keyof typeof ERROR_CODES;

// ---------------------------------------------------------------------------------------
// Stored records as they appear on the wire

/** Most sources one reply carries (issue 16: compact links under the answer). */
export const MAX_SOURCES = 8;

/** Where a source came from: a cached site page, a GitHub file, a live fetch, a web search. */
export const SourceKind = z.enum(["page", "github", "live", "web"]);
export type SourceKind = z.infer<typeof SourceKind>;

/** A page a turn's tools returned; `url` is http(s) only, so the page can link it safely. */
export const Source = z.object({
  url: z.string().max(2048).url().refine((u) => /^https?:\/\//i.test(u), {
    message: "source url must be http or https",
  }),
  title: z.string().max(300),
  kind: SourceKind,
});
export type Source = z.infer<typeof Source>;

/** A reply's sources: at most `MAX_SOURCES`, deduplicated by url. */
export const Sources = z.array(Source).max(MAX_SOURCES).refine(
  (list) => new Set(list.map((s) => s.url)).size === list.length,
  { message: "sources must not repeat a url" },
);

/** Why a turn failed: kept on the visitor message for the operator and the Retry row. */
export const TurnFailure = z.object({
  code: z.string().max(80),
  /** A whole visitor-facing sentence. */
  error: z.string().max(500),
  failedAt: IsoTime,
});
export type TurnFailure = z.infer<typeof TurnFailure>;

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
  /** Terra only: a failure cut the stream after some text; `content` is the partial text. */
  interrupted: z.boolean().optional(),
  /** Terra only: the pages the turn's tools returned (at most 8, one per url). */
  sources: Sources.optional(),
  /** Visitor only: this message's turn failed; cleared when a retry re-opens it. */
  failure: TurnFailure.optional(),
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

/** The original page's labels, shown by it for each link (it looks links up by `id`). */
export const CHAIN_LABELS: Record<ChainLink["name"], string> = {
  frontend: "Frontend",
  relay: "Relay",
  worker: "Webchat worker",
  agent: "terrarium-agent",
  llm: "vLLM",
};

/** A chain link in `/api/health`: `id` and `label` as the original page reads them. */
export const HealthLink = ChainLink.extend({
  id: ChainLink.shape.name,
  label: z.string(),
});
export type HealthLink = z.infer<typeof HealthLink>;

/**
 * A report time as an ISO string with its zone. The original worker sends Python's
 * `datetime.utcnow().isoformat()` (UTC, no zone, microseconds), or null: zone-less times
 * are read as UTC and every time is rewritten as `Date#toISOString()`.
 */
export function normaliseReportTime(value: string): string | null {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/
    .exec(value);
  if (!match) return null;
  const fraction = (match[2] ?? "").slice(0, 3);
  // Date.parse wants "+HH:MM"; accept "+HHMM" too.
  const zone = (match[3] ?? "Z").replace(/^([+-]\d{2})(\d{2})$/, "$1:$2");
  const ms = Date.parse(`${match[1]}${fraction ? `.${fraction}` : ""}${zone}`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/** A component report sent by the worker. */
export const ComponentReport = z.object({
  status: ComponentStatus,
  detail: z.string().max(500).default(""),
  checkedAt: IsoTime.max(64).refine((t) => normaliseReportTime(t) !== null, {
    message: "checkedAt must be an ISO 8601 date and time",
  }).optional(),
  latencyMs: z.number().nonnegative().nullable().optional(),
});
export type ComponentReport = z.infer<typeof ComponentReport>;

/**
 * A report as the original worker may also send it: `null` detail or checkedAt, and
 * zone-less times; normalised to `ComponentReport` before validation.
 */
export const ComponentReportInput = z.preprocess((value) => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  const report: Record<string, unknown> = { ...value };
  if (report.detail === null) delete report.detail;
  if (report.checkedAt === null) delete report.checkedAt;
  if (typeof report.checkedAt === "string") {
    report.checkedAt = normaliseReportTime(report.checkedAt) ?? report.checkedAt;
  }
  return report;
}, ComponentReport);

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
  /** The pages the turn's tools returned (at most 8, one per url). */
  sources: Sources.optional(),
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

/**
 * `POST /api/worker/turns/:turnId/fail` (worker): the turn failed. Closes the turn and
 * records the failure on its visitor message; a non-empty `partial` is also stored as a
 * Terra message marked `interrupted`.
 */
export const TurnFailRequest = z.object({
  leaseId: Id,
  code: z.string().min(1).max(80),
  /** A whole visitor-facing sentence. */
  error: z.string().min(1).max(500),
  partial: z.string().optional(),
});
export type TurnFailRequest = z.infer<typeof TurnFailRequest>;

/** The operator's words for the page: `GET /api/site` (public), `PUT /api/worker/site`. */
export const SiteProfile = z.object({
  siteName: z.string().max(80),
  assistantName: z.string().max(40),
  /** Shown on the gate above the code field: who Terra is. */
  gateText: z.string().max(600),
  /** How a visitor gets an access code. */
  accessHelp: z.string().max(600),
  /** The first thing Terra says in a new chat; Markdown. */
  greeting: z.string().max(1200),
  suggestions: z.array(z.string().min(1).max(160)).max(4),
  /** Shown while no worker or model is there to answer. */
  offlineText: z.string().max(600),
});
export type SiteProfile = z.infer<typeof SiteProfile>;

/** What `GET /api/site` answers before an operator published anything. */
export const DEFAULT_SITE_PROFILE: SiteProfile = {
  siteName: "Terrarium",
  assistantName: "Terra",
  gateText: "Terra is an AI assistant that answers questions about this site and its author.",
  accessHelp: "Ask the site owner for an access code.",
  greeting: "Hi, I'm Terra. Ask me anything about this site.",
  suggestions: [],
  offlineText:
    "Terra is offline right now — leave a question and it will be answered when Terra is back.",
};

/** `POST /api/chat/:chatId/messages/:messageId/retry` (visitor): re-open a failed turn. */
export const RetryResponse = z.object({ ok: z.literal(true) });

/** `POST /api/chat/:chatId/worker-state` (worker). */
export const WorkerStateRequest = z.object({
  state: WorkerStateName,
  detail: z.string().max(500).optional(),
});
export type WorkerStateRequest = z.infer<typeof WorkerStateRequest>;

/** `POST /api/worker/status` (worker): feeds `/api/health`. */
export const WorkerStatusRequest = z.object({
  agentApi: ComponentReportInput,
  llm: ComponentReportInput,
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
  /** "ok" whenever the relay answers, as the original relay said it. */
  relay: z.literal("ok"),
  workerReady: z.boolean(),
  workerLastSeenAt: IsoTime.nullable(),
  workerStatus: z.object({ agentApi: ComponentReport, llm: ComponentReport }).nullable(),
  chain: z.array(HealthLink),
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
  /** The visitor message whose turn this is about (a failure's or a retry's). */
  turnId: z.string().optional(),
  /** With `state: "error"` for a failed turn: its `TurnFailure.code`. */
  code: z.string().optional(),
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
export const SocketErrorEvent = ErrorBody.extend({
  type: z.literal("error"),
  /**
   * The worker's chunk this error refuses (chunks get no ack): on `chunk_gap` the worker
   * sends the text of that kind again from offset 0.
   */
  chunk: z.object({
    chatId: ChatId,
    turnId: Id.nullable(),
    kind: ChunkKind,
    offset: z.number().int().nonnegative().optional(),
  }).optional(),
});
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

/**
 * The answer to a worker request that carried a `requestId`. A refusal carries the same
 * facts as the HTTP answer would: `code`, its HTTP `status` and whether to retry
 * (`ERROR_CODES`); a relay from before issue 13 sent only the code.
 */
export const AckEvent = z.object({
  type: z.literal("ack"),
  requestId: z.string(),
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.string().optional(),
  code: z.string().optional(),
  status: z.number().int().optional(),
  retryable: z.boolean().optional(),
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
  TurnFailRequest.extend({
    type: z.literal("fail"),
    requestId: RequestId,
    chatId: ChatId,
    turnId: Id,
  }),
  WorkerStatusRequest.extend({ type: z.literal("status") }),
  z.object({ type: z.literal("ping") }),
]);
export type WorkerClientEvent = z.infer<typeof WorkerClientEvent>;
