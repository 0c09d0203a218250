import { assert, assertEquals, assertThrows } from "../../tests/_assert.ts";
import { RelayError } from "./errors.ts";
import { SocketSlots } from "./socket_slots.ts";

function refusal(fn: () => unknown): string {
  const error = assertThrows(fn);
  assert(error instanceof RelayError);
  return `${error.status} ${error.code}`;
}

Deno.test("socket slots: a key holds at most its cap from the handshake on; releasing frees one", () => {
  const slots = new SocketSlots(2, 10);
  const a = slots.reserve("192.0.2.1", () => {});
  const b = slots.reserve("192.0.2.1", () => {});
  assertEquals(refusal(() => slots.reserve("192.0.2.1", () => {})), "429 too_many_sockets");
  const other = slots.reserve("2001:db8:1:2::/64", () => {});
  a.opened();
  assertEquals(slots.count("192.0.2.1"), 2, "an opened socket still counts");
  a.release();
  a.release(); // idempotent
  assertEquals(slots.count("192.0.2.1"), 1);
  const c = slots.reserve("192.0.2.1", () => {});
  for (const slot of [b, c, other]) slot.release();
  assertEquals([slots.count("192.0.2.1"), slots.pending], [0, 0]);
});

Deno.test("socket slots: pending sockets relay-wide are capped until they open", () => {
  const slots = new SocketSlots(100, 2);
  const a = slots.reserve("k1", () => {});
  const b = slots.reserve("k2", () => {});
  assertEquals(refusal(() => slots.reserve("k3", () => {})), "503 sockets_busy");
  a.opened();
  assertEquals(slots.pending, 1);
  const c = slots.reserve("k3", () => {});
  for (const slot of [a, b, c]) slot.release();
  assertEquals(slots.pending, 0);
});

Deno.test("socket slots: a socket that never opens gives its slot back", async () => {
  const slots = new SocketSlots(1, 1, 10, 20);
  let timedOut = false;
  slots.reserve("k", () => timedOut = true);
  for (let i = 0; i < 100 && !timedOut; i++) await new Promise((r) => setTimeout(r, 10));
  assert(timedOut);
  assertEquals([slots.count("k"), slots.pending], [0, 0]);
  slots.reserve("k", () => {}).release();
});

Deno.test("socket slots: a key opens at most its sockets for the minute, then waits for the next", () => {
  let now = 1_000_000;
  const slots = new SocketSlots(2, 10, 3, 10_000, () => now);
  for (let i = 0; i < 3; i++) slots.reserve("k", () => {}).release();
  assertEquals(refusal(() => slots.reserve("k", () => {})), "429 too_many_sockets");
  slots.reserve("other", () => {}).release();
  now += 60_000;
  slots.reserve("k", () => {}).release();
});
