/**
 * A raw RFC 6455 client over TCP, for what a WebSocket object cannot do: send broken frames,
 * or complete the handshake and then never read. Server frames are parsed from the bytes.
 */
import { TEST_SECRETS } from "./_relay_process.ts";

/**
 * Opens a TCP connection and sends a visitor-socket handshake: with the legacy access code
 * (an original-page socket, which gets the original frames only), or with `token`.
 */
export async function rawVisitorHandshake(
  port: number,
  chatId: string,
  token?: string,
): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const credentials = token
    ? ` HTTP/1.1\r\nAuthorization: Bearer ${token}`
    : `&accessCode=${TEST_SECRETS.CHAT_PASSWORD} HTTP/1.1`;
  await conn.write(new TextEncoder().encode(
    `GET /api/chat?chatId=${chatId}${credentials}\r\n` +
      `Host: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${btoa("terrarium-raw!!!")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  return conn;
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
