/**
 * One chat driven through a proxy from a separate process (`deno run tests/_proxied_chat.ts
 * BASE`), so a test can give it `DENO_CERT` for a proxy's self-signed TLS: the page, the
 * session token, the worker socket, a visitor socket (token and legacy access code),
 * a claimed turn streamed and answered. Exits 0 when every step worked; prints the failure.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  chatHistory,
  postMessage,
  RecordingSocket,
  request,
  visitorSocket,
  visitorToken,
  workerCall,
} from "./_clients.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

/** Drives the chat at `base` (e.g. "https://127.0.0.1:8443/terrarium"). */
export async function driveChat(base: string): Promise<void> {
  const page = await fetch(`${base}/`);
  const html = await page.text();
  assertEquals(page.status, 200, "the page");
  assert(/<html/i.test(html), "the page is HTML");

  const token = await visitorToken(base);
  const socketBase = base.replace(/^http/, "ws");
  const worker = new RecordingSocket(`${socketBase}/api/worker/updates`, {
    "x-service-token": TEST_SECRETS.SERVICE_TOKEN,
  });
  await worker.waitFor((es) => es.some((e) => e.type === "hello"), 10_000, "hello");
  const visitor = await visitorSocket(base, "proxied", token);
  // The old protocol's socket, with the access code in its URL (kept out of nginx's log).
  const legacy = new RecordingSocket(
    `${socketBase}/api/chat?chatId=proxied&accessCode=${TEST_SECRETS.CHAT_PASSWORD}`,
  );
  await legacy.opened;

  await postMessage(base, token, "proxied", "Through nginx?");
  await worker.waitFor((es) => es.some((e) => e.type === "chat_activity"));
  const turn = (await workerCall(worker, { type: "claim", workerId: "w" })).result.turn;
  worker.send({ type: "chunk", chatId: "proxied", content: "Yes, ", turnId: turn.id });
  await workerCall(worker, {
    type: "reply",
    chatId: "proxied",
    content: "Yes, through nginx.",
    replyTo: turn.id,
  });
  // The legacy socket gets the original frames: a message is the bare message, no `type`.
  for (const [socket, messageType] of [[visitor, "message"], [legacy, undefined]] as const) {
    await socket.waitFor((es) => es.some((e) => e.type === messageType && e.sender === "Terra"));
    assert(socket.events.some((e) => e.type === "assistantChunk" && e.content === "Yes, "));
  }
  assertEquals((await chatHistory(base, token, "proxied")).length, 2);
  assertEquals((await request(`${base}/healthz`)).status, 200);
  await Promise.all([visitor.close(), legacy.close(), worker.close()]);
}

if (import.meta.main) {
  try {
    await driveChat(Deno.args[0]!);
    // deno-lint-ignore no-console
    console.log("proxied chat: ok");
  } catch (error) {
    // deno-lint-ignore no-console
    console.error(`proxied chat failed: ${(error as Error).stack ?? error}`);
    Deno.exit(1);
  }
}
