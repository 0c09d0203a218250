/**
 * Property-based fuzzing (fast-check) of both WebSockets of a running relay process (issue
 * 7, SPEC §3): malformed, wrongly typed, surrogate-heavy, binary and oversized frames, and
 * frames broken at the protocol level over raw TCP. Every bad frame gets an error frame (a
 * failed ack when the worker waits on it) or closes its socket with 1008/1009; a frame that
 * breaks RFC 6455 fails the connection; the relay stays up, and the chat it serves is
 * untouched.
 */
import fc from "fast-check";
import { VisitorClientEvent, WorkerClientEvent } from "../lib/protocol.ts";
import { MAX_BAD_FRAMES } from "../lib/relay/_ws.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  type Json,
  type RecordingSocket,
  visitorSocket,
  visitorToken,
  workerSocket,
} from "./_clients.ts";
import { afterHandshake, parseServerFrames, rawVisitorHandshake } from "./_raw_websocket.ts";
import { withRelay } from "./_relay_process.ts";
import { assertIntact, KNOWN_CHAT, knownChat } from "./_store_checks.ts";

const FRAME_LIMIT = 4096;
const WORKER_FRAME_LIMIT = 8192;
const RELAY_ENV = {
  MAX_WS_FRAME_BYTES: `${FRAME_LIMIT}b`,
  BODY_SIZE_LIMIT: `${WORKER_FRAME_LIMIT}b`,
  MAX_SOCKETS_PER_IP: "1000",
  MAX_SOCKETS_PER_CHAT: "1000",
  RATE_LIMIT_MAX_PER_IP: "1000",
};

const loneSurrogates = fc.string({
  unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((n) => String.fromCharCode(n)),
  maxLength: 300,
});
const weirdString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  loneSurrogates,
  fc.constantFrom("", "\u0000", "\u202e", "null", "{}", "💥".repeat(40)),
);
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), weirdString);

/** A frame as the fuzzer sends it: text (any string) or binary. */
type Frame = { text: string } | { bytes: Uint8Array<ArrayBuffer> };

/** Frames shaped like the given event types, with fields of the right names and any values. */
function frames(types: string[], fields: string[], extra: fc.Arbitrary<string>[] = []) {
  const event = fc.record({
    type: fc.oneof({ arbitrary: fc.constantFrom(...types), weight: 4 }, anyValue),
    rest: fc.dictionary(fc.constantFrom(...fields), anyValue, { maxKeys: 5 }),
  }).map(({ type, rest }) => JSON.stringify({ ...rest, type }));
  const text: fc.Arbitrary<string> = fc.oneof(
    { arbitrary: event, weight: 5 },
    fc.json({ maxDepth: 4 }),
    weirdString,
    fc.integer({ min: 1, max: 3 }).map((n) => "é".repeat((FRAME_LIMIT / 2) * n - 8)),
    fc.integer({ min: 100, max: 1500 }).map((n) => "[".repeat(n) + "]".repeat(n)),
    ...extra,
  );
  return fc.oneof(
    { arbitrary: text.map((t): Frame => ({ text: t })), weight: 6 },
    fc.uint8Array({ maxLength: WORKER_FRAME_LIMIT + 2000 }).map((b): Frame => ({
      bytes: new Uint8Array(b),
    })),
  );
}

/** UTF-8 size of what the relay receives (a lone surrogate goes out as U+FFFD, 3 bytes). */
function frameBytes(frame: Frame): number {
  return "text" in frame ? new TextEncoder().encode(frame.text).byteLength : frame.bytes.length;
}

function parsesAs(schema: typeof VisitorClientEvent | typeof WorkerClientEvent, frame: Frame) {
  if (!("text" in frame)) return null;
  try {
    const result = schema.safeParse(JSON.parse(frame.text.toWellFormed()));
    return result.success ? result.data : null;
  } catch {
    return null;
  }
}

/**
 * Sends `{type:"ping"}` and waits (bounded) for the close or for `pongs` pongs since `from`
 * (ours, plus one for a fuzzed frame that was itself a ping); returns the new events.
 */
async function checkpoint(socket: RecordingSocket, from: number, pongs = 1): Promise<Json[]> {
  if (socket.socket.readyState === WebSocket.OPEN) socket.send({ type: "ping" });
  await socket.waitFor(
    (es) =>
      socket.closeCode !== null ||
      es.slice(from).filter((e) => e.type === "pong").length >= pongs,
    10_000,
    "pong or close",
  );
  return socket.events.slice(from);
}

function sendFrame(socket: RecordingSocket, frame: Frame): void {
  socket.socket.send("text" in frame ? frame.text : frame.bytes);
}

Deno.test("fuzzed frames on the visitor socket get one error frame each or a 1008/1009 close", async () => {
  await withRelay(RELAY_ENV, async (relay) => {
    const token = await visitorToken(relay.url);
    const known = await knownChat(relay, token);
    // Credentials go in the handshake only: an in-band `auth` frame is junk like any other.
    const authFrame = fc.constantFrom(
      JSON.stringify({ type: "auth", token }),
      JSON.stringify({ type: "auth", token, since: 1 }),
    );
    const sequence = fc.array(frames(["auth", "ping"], ["token", "since", "chatId"], [authFrame]), {
      minLength: 1,
      maxLength: 8,
    });
    await fc.assert(
      fc.asyncProperty(sequence, async (frames) => {
        const socket = await visitorSocket(relay.url, KNOWN_CHAT, token);
        let bad = 0;
        try {
          for (const frame of frames) {
            const from = socket.events.length;
            sendFrame(socket, frame);
            // After a frame the relay must refuse, send nothing more: Deno's client reports a
            // close as code 0 when it sent a frame after the relay's close frame (the raw test
            // below reads the relay's close frame itself).
            const tooBig = frameBytes(frame) > FRAME_LIMIT;
            const event = parsesAs(VisitorClientEvent, frame);
            if (!tooBig && event === null) bad++;
            const refused = tooBig || bad >= MAX_BAD_FRAMES;
            const events = refused
              ? (await socket.waitClosed(), socket.events.slice(from))
              : await checkpoint(socket, from, event?.type === "ping" ? 2 : 1);
            const what = `${JSON.stringify(frame).slice(0, 200)} → ${
              JSON.stringify(events).slice(0, 300)
            } close=${socket.closeCode}`;
            if (refused) {
              // Too big is 1009; the fifth junk frame is 1008, with no answer of its own.
              assertEquals(socket.closeCode, tooBig ? 1009 : 1008, what);
              assert(events.every((e) => e.type !== "message"), what);
              return;
            }
            assertEquals(socket.closeCode, null, what);
            const errors = events.filter((e) => e.type === "error");
            assertEquals(errors.map((e) => e.code), event === null ? ["bad_event"] : [], what);
            for (const error of errors) {
              assertEquals(Object.keys(error).sort(), ["code", "error", "type"], what);
            }
            // Nothing but answers to this socket's own frames (the chat is quiet).
            assert(events.every((e) => ["error", "pong"].includes(e.type)), what);
          }
        } finally {
          await socket.close();
        }
      }),
      { numRuns: 150, interruptAfterTimeLimit: 12_000 },
    );
    await assertIntact(relay, token, known);
  });
});

Deno.test("fuzzed frames on the worker socket get an error or a failed ack each, or a 1009 close", async () => {
  await withRelay(RELAY_ENV, async (relay) => {
    const token = await visitorToken(relay.url);
    const known = await knownChat(relay, token);
    const types = ["claim", "renew", "release", "chunk", "state", "reply", "status", "ping"];
    const fields = [
      "requestId",
      "workerId",
      "chatId",
      "turnId",
      "leaseId",
      "content",
      "done",
      "kind",
      "offset",
      "state",
      "detail",
      "replyTo",
      "stopped",
      "agentApi",
      "llm",
    ];
    // Chat ids and request ids of the right shape, so more frames get past the first checks;
    // never the known chat, whose history must not change.
    const shaped = fc.record({
      type: fc.constantFrom(...types),
      requestId: fc.stringMatching(/^[a-z0-9]{1,12}$/),
      chatId: fc.constantFrom("fuzz-chat", "other-chat"),
      rest: fc.dictionary(fc.constantFrom(...fields.slice(3)), anyValue, { maxKeys: 4 }),
    }).map(({ rest, ...head }) => JSON.stringify({ ...rest, ...head }));
    let worker = await workerSocket(relay.url, "w-fuzz");
    let bad = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            frames(types, fields, [shaped]).filter((f) => frameBytes(f) <= WORKER_FRAME_LIMIT),
            { minLength: 1, maxLength: 4 },
          ),
          async (frames) => {
            for (const frame of frames) {
              const from = worker.events.length;
              sendFrame(worker, frame);
              const event = parsesAs(WorkerClientEvent, frame);
              if (event === null && ++bad >= MAX_BAD_FRAMES) {
                // A few junk frames are answered; the fifth closes the socket (1008).
                assertEquals(await worker.waitClosed(), 1008, JSON.stringify(frame).slice(0, 200));
                worker = await workerSocket(relay.url, "w-fuzz");
                bad = 0;
                continue;
              }
              const events = await checkpoint(worker, from, event?.type === "ping" ? 2 : 1);
              const what = `${JSON.stringify(frame).slice(0, 200)} → ${
                JSON.stringify(events).slice(0, 300)
              } close=${worker.closeCode}`;
              assertEquals(worker.closeCode, null, what);
              if (event) continue; // a well-formed request: its answer is the routes' business
              let requestId: unknown;
              try {
                requestId = JSON.parse((frame as { text: string }).text.toWellFormed()).requestId;
              } catch { /* binary or not JSON */ }
              // Answers to earlier well-formed requests may arrive late (they await the
              // store); only this frame can have earned a `bad_event`.
              assert(events.every((e) => ["ack", "error", "pong"].includes(e.type)), what);
              const answers = events.filter((e) => e.code === "bad_event");
              if (
                typeof requestId === "string" && requestId.length >= 1 && requestId.length <= 80
              ) {
                // The worker waits on a request id: it gets a failed ack, not a bare error.
                assertEquals(answers, [{
                  type: "ack",
                  requestId,
                  ok: false,
                  code: "bad_event",
                  error: "Unrecognised or malformed event",
                }], what);
              } else {
                assertEquals(answers.map((e) => [e.type, e.code]), [["error", "bad_event"]], what);
              }
            }
          },
        ),
        {
          numRuns: 150,
          interruptAfterTimeLimit: 10_000,
          // Regression: a malformed request used to get a bare error without its requestId,
          // so the worker waited it out instead of failing the call at once.
          examples: [[[{ text: '{"type":"claim","requestId":"a","chatId":"fuzz-chat"}' }]]],
        },
      );
    } finally {
      await worker.close();
    }
    // Oversized frames, text and binary, close the worker socket with 1009.
    for (
      const frame of [{ text: "w".repeat(WORKER_FRAME_LIMIT + 1) }, {
        bytes: new Uint8Array(WORKER_FRAME_LIMIT + 1),
      }]
    ) {
      const socket = await workerSocket(relay.url, "w-big");
      sendFrame(socket, frame);
      assertEquals(await socket.waitClosed(), 1009);
    }
    await assertIntact(relay, token, known);
  });
});

// ---------------------------------------------------------------------------------------
// Frames broken below JSON: raw RFC 6455 framing over TCP

/** A client frame (RFC 6455 §5.2) with every header bit chosen by the fuzzer. */
interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** 7 = the shortest length encoding; 16/64 may be non-minimal. */
  lengthBits: 7 | 16 | 64;
  payload: Uint8Array;
}

function encodeFrame(frame: RawFrame): Uint8Array {
  const { payload } = frame;
  const head: number[] = [(frame.fin ? 0x80 : 0) | (frame.rsv << 4) | frame.opcode];
  const mask = frame.masked ? 0x80 : 0;
  const bits = payload.length > 0xffff
    ? 64
    : payload.length > 125 && frame.lengthBits === 7
    ? 16
    : frame.lengthBits;
  if (bits === 7) head.push(mask | payload.length);
  else if (bits === 16) head.push(mask | 126, payload.length >> 8, payload.length & 0xff);
  else {
    head.push(mask | 127, 0, 0, 0, 0);
    for (const shift of [24, 16, 8, 0]) head.push((payload.length >>> shift) & 0xff);
  }
  const key = [0x12, 0x34, 0x56, 0x78];
  if (frame.masked) head.push(...key);
  const body = frame.masked ? payload.map((b, i) => b ^ key[i % 4]!) : payload;
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

const rawFrame: fc.Arbitrary<RawFrame> = fc.record({
  fin: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, fc.constant(false)),
  rsv: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, fc.integer({ min: 1, max: 7 })),
  opcode: fc.oneof(
    { arbitrary: fc.constantFrom(0x1, 0x2, 0x9), weight: 4 },
    fc.integer({ min: 0, max: 15 }),
  ),
  masked: fc.oneof({ arbitrary: fc.constant(true), weight: 5 }, fc.constant(false)),
  lengthBits: fc.constantFrom(7 as const, 16 as const, 64 as const),
  payload: fc.oneof(
    fc.string({ unit: "binary", maxLength: 200 }).map((s) => new TextEncoder().encode(s)),
    fc.uint8Array({ maxLength: 300 }),
    // Invalid UTF-8: a lone surrogate as WTF-8, a stray continuation byte, an overlong NUL.
    fc.constantFrom([0xed, 0xa0, 0x80], [0x80], [0xc0, 0x80], [0xff, 0xfe]).map((b) =>
      new Uint8Array([...new TextEncoder().encode('{"type":"'), ...b, 0x22, 0x7d])
    ),
    fc.integer({ min: FRAME_LIMIT + 1, max: FRAME_LIMIT * 3 }).map((n) => new Uint8Array(n)),
  ),
});

const PONG = '{"type":"pong"}';

/**
 * Reads what the relay sends until it closes the connection (EOF or reset), answers our
 * ping, or stays silent for `idleMs` (bounded by count too); returns the bytes and the end.
 */
async function readReply(
  conn: Deno.TcpConn,
  idleMs: number,
): Promise<{ bytes: Uint8Array; end: "closed" | "pong" | "silent" }> {
  let bytes = new Uint8Array(0);
  const buffer = new Uint8Array(16 * 1024);
  for (let i = 0; i < 500; i++) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buffer).catch(() => null),
      new Promise<"idle">((resolve) => timer = setTimeout(() => resolve("idle"), idleMs)),
    ]);
    clearTimeout(timer);
    if (n === "idle") return { bytes, end: "silent" };
    if (n === null) return { bytes, end: "closed" };
    const grown = new Uint8Array(bytes.length + n);
    grown.set(bytes);
    grown.set(buffer.subarray(0, n), bytes.length);
    bytes = grown;
    if (new TextDecoder().decode(bytes).includes(PONG)) return { bytes, end: "pong" };
  }
  return { bytes, end: "silent" };
}

Deno.test("frames that break RFC 6455 fail the connection (any close code is 1002/1007/1009) and never leave it hanging", async () => {
  await withRelay(RELAY_ENV, async (relay) => {
    const token = await visitorToken(relay.url);
    const known = await knownChat(relay, token);
    const ping = encodeFrame({
      fin: true,
      rsv: 0,
      opcode: 0x1,
      masked: true,
      lengthBits: 7,
      payload: new TextEncoder().encode('{"type":"ping"}'),
    });
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(rawFrame, { minLength: 1, maxLength: 3 }), async (frames) => {
        const conn = await rawVisitorHandshake(relay.port, "raw-fuzz");
        try {
          // The relay may close (and reset) the connection before it has read everything.
          for (const frame of [...frames.map(encodeFrame), ping]) {
            if (!(await conn.write(frame).then(() => true, () => false))) break;
          }
          const { bytes, end } = await readReply(conn, 5_000);
          const text = new TextDecoder().decode(bytes);
          const { opcodes, texts, closeCode } = parseServerFrames(afterHandshake(bytes));
          const what = `${
            JSON.stringify(frames.map((f) => ({ ...f, payload: f.payload.length })))
          } → ${end} ${opcodes} close=${closeCode}`;
          outcomes.set(`${end} ${closeCode}`, (outcomes.get(`${end} ${closeCode}`) ?? 0) + 1);
          // Either the relay still serves the socket (our ping is answered) or it has failed
          // the connection (RFC 6455 §7.1.7); it never leaves a broken socket hanging open.
          assert(end !== "silent", what);
          if (bytes.length) assert(text.startsWith("HTTP/1.1 101"), text.slice(0, 200));
          // A close frame, when one arrives before the connection drops, gives a fitting code.
          assert(closeCode === null || [1002, 1007, 1009].includes(closeCode), what);
          // Only text (events), pong and close frames come back; every event is well-formed.
          assert(opcodes.every((op) => [0x1, 0x8, 0xa].includes(op)), what);
          for (const event of texts.map((t) => JSON.parse(t))) {
            assert(["ready", "error", "pong"].includes(event.type), what);
            if (event.type === "error") assertEquals(event.code, "bad_event", what);
          }
        } finally {
          try {
            conn.close();
          } catch { /* closed */ }
        }
      }),
      { numRuns: 60, interruptAfterTimeLimit: 12_000 },
    );
    // The fuzzer reached both ends: sockets that kept serving and sockets the relay failed.
    const ends = [...outcomes.keys()].join();
    assert(ends.includes("pong") && ends.includes("closed"), JSON.stringify([...outcomes]));
    await assertIntact(relay, token, known);
  });
});
