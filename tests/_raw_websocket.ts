/**
 * A raw RFC 6455 client over TCP, for what a WebSocket object cannot do: send broken frames,
 * or complete the handshake and then never read. Server frames are parsed from the bytes.
 */
import { TEST_SECRETS } from "./_relay_process.ts";

/**
 * Opens a TCP connection and sends a visitor-socket handshake: with the legacy access code
 * (an original-page socket, which gets the original frames only), or with `token`.
 */
export function rawVisitorHandshake(
  port: number,
  chatId: string,
  token?: string,
): Promise<Deno.TcpConn> {
  return token
    ? rawHandshake(port, `/api/chat?chatId=${chatId}`, { authorization: `Bearer ${token}` })
    : rawHandshake(port, `/api/chat?chatId=${chatId}&accessCode=${TEST_SECRETS.CHAT_PASSWORD}`);
}

/** Opens a TCP connection and sends a WebSocket handshake for `path` with `headers`. */
export async function rawHandshake(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  await conn.write(new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\n` +
      `Host: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${btoa("terrarium-raw!!!")}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
  ));
  return conn;
}

/**
 * A masked client frame (RFC 6455 §5.2) with FIN set; `declaredLength` may claim more
 * payload than follows, to start a frame without sending all of it.
 */
export function clientFrame(
  payload: Uint8Array | string,
  opcode = 0x1,
  declaredLength?: number,
): Uint8Array {
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const length = declaredLength ?? bytes.length;
  const head = [0x80 | opcode];
  if (length < 126) head.push(0x80 | length);
  else if (length <= 0xffff) head.push(0x80 | 126, length >> 8, length & 0xff);
  else {
    head.push(0x80 | 127, 0, 0, 0, 0);
    for (const shift of [24, 16, 8, 0]) head.push((length >>> shift) & 0xff);
  }
  const key = [0x5a, 0x17, 0xc3, 0x81];
  head.push(...key);
  const out = new Uint8Array(head.length + bytes.length);
  out.set(head);
  for (let i = 0; i < bytes.length; i++) out[head.length + i] = bytes[i]! ^ key[i % 4]!;
  return out;
}

/**
 * Reads (bounded in count and idle time) until `done(bytes)` or the connection ends;
 * returns every byte read.
 */
export async function readUntil(
  conn: Deno.TcpConn,
  done: (bytes: Uint8Array) => boolean,
  idleMs = 5_000,
): Promise<Uint8Array> {
  let bytes = new Uint8Array(0);
  const buffer = new Uint8Array(64 * 1024);
  for (let i = 0; i < 5_000 && !done(bytes); i++) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buffer).catch(() => null),
      new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), idleMs)),
    ]);
    clearTimeout(timer);
    if (n === null) break;
    const grown = new Uint8Array(bytes.length + n);
    grown.set(bytes);
    grown.set(buffer.subarray(0, n), bytes.length);
    bytes = grown;
  }
  return bytes;
}

/** The bytes after the HTTP response head (the WebSocket frames), or all when none. */
export function afterHandshake(bytes: Uint8Array): Uint8Array {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return bytes.subarray(i + 4);
    }
  }
  return bytes;
}

/** Server frames read off the raw socket: opcodes, text payloads, the close code if one came. */
export function parseServerFrames(
  bytes: Uint8Array,
): { opcodes: number[]; texts: string[]; closeCode: number | null } {
  const opcodes: number[] = [];
  const texts: string[] = [];
  let closeCode: number | null = null;
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f;
    let length = bytes[at + 1]! & 0x7f;
    let start = at + 2;
    if (length === 126) {
      length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
      start = at + 4;
    } else if (length === 127) {
      length = Number(new DataView(bytes.buffer, bytes.byteOffset + at + 2, 8).getBigUint64(0));
      start = at + 10;
    }
    if (start + length > bytes.length) break;
    opcodes.push(opcode);
    if (opcode === 0x1) texts.push(new TextDecoder().decode(bytes.subarray(start, start + length)));
    if (opcode === 0x8 && length >= 2) closeCode = (bytes[start]! << 8) | bytes[start + 1]!;
    at = start + length;
  }
  return { opcodes, texts, closeCode };
}
