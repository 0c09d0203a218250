import { assertEquals } from "../../tests/_assert.ts";
import { FrameBudget, frameSize, frameTooLarge, MAX_BAD_FRAMES, sendBounded } from "./_ws.ts";
import { WorkerHub } from "./worker_hub.ts";

/** A stand-in socket: what was sent, how it was closed, a settable send buffer. */
function fakeSocket(bufferedAmount = 0) {
  const socket = {
    readyState: WebSocket.OPEN as number,
    bufferedAmount,
    sent: [] as string[],
    closed: null as [number, string] | null,
    send(data: string) {
      socket.sent.push(data);
    },
    close(code: number, reason: string) {
      socket.closed = [code, reason];
      socket.readyState = WebSocket.CLOSING;
    },
  };
  return socket;
}
const asSocket = (s: ReturnType<typeof fakeSocket>) => s as unknown as WebSocket;

Deno.test("sendBounded sends under the cap, closes 1013 over it, and skips a closed socket", () => {
  const ok = fakeSocket(1000);
  assertEquals(sendBounded(asSocket(ok), "a", 1000), true);
  assertEquals([ok.sent, ok.closed], [["a"], null]);

  const behind = fakeSocket(1001);
  assertEquals(sendBounded(asSocket(behind), "b", 1000), false);
  assertEquals([behind.sent, behind.closed?.[0]], [[], 1013]);

  const gone = fakeSocket();
  gone.readyState = WebSocket.CLOSED;
  assertEquals(sendBounded(asSocket(gone), "c", 1000), true);
  assertEquals(gone.sent, []);
});

Deno.test("a worker that stops reading is closed with 1013 and left out of later broadcasts", () => {
  const hub = new WorkerHub(100);
  const reading = fakeSocket();
  const stuck = fakeSocket(101);
  hub.add({ socket: asSocket(reading), workerId: "a" });
  hub.add({ socket: asSocket(stuck), workerId: "b" });
  hub.broadcast({
    type: "chat_activity",
    chatId: "c1",
    messageId: "m1",
    emittedAt: new Date().toISOString(),
  });
  assertEquals([reading.sent.length, stuck.sent.length, stuck.closed?.[0]], [1, 0, 1013]);
  assertEquals(hub.size, 1);
});

Deno.test("FrameBudget: a burst, then the refill rate; the fifth bad frame is the last", () => {
  let now = 0;
  const budget = new FrameBudget(5, 20, () => now);
  for (let i = 0; i < 20; i++) assertEquals(budget.take(), null);
  assertEquals(budget.take(), "Too many frames");
  now += 1000; // five more
  for (let i = 0; i < 5; i++) assertEquals(budget.take(), null);
  assertEquals(budget.take(), "Too many frames");
  for (let i = 1; i < MAX_BAD_FRAMES; i++) assertEquals(budget.bad(), null);
  assertEquals(budget.bad(), "Too many bad frames");
});

Deno.test("frameTooLarge() agrees with the UTF-8 size at the limit, for ASCII, BMP and astral text", () => {
  const encoder = new TextEncoder();
  for (const unit of ["a", "é", "€", "😀"]) {
    for (let n = 0; n <= 40; n++) {
      const text = unit.repeat(n);
      const bytes = encoder.encode(text).length;
      assertEquals(frameSize(text), bytes);
      for (const max of [bytes - 1, bytes, bytes + 1, 3 * text.length, 3 * text.length - 1]) {
        if (max < 0) continue;
        assertEquals(frameTooLarge(text, max), bytes > max, `${unit} x${n}, max ${max}`);
      }
    }
  }
  assertEquals(frameTooLarge(new ArrayBuffer(10), 9), true);
  assertEquals(frameTooLarge(new ArrayBuffer(10), 10), false);
});
