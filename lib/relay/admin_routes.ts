/** Operator routes: JSON Lines transcript export (SPEC §3), behind `ADMIN_TOKEN`. */
import { Hono } from "hono";
import type { RelayDeps } from "./deps.ts";
import { RelayError } from "./errors.ts";
import type { RelayEnv } from "./http.ts";
import type { ChatRecord } from "./store/chat_store.ts";

/** Parses an ISO time query parameter (400 `bad_query` when malformed). */
function timeQuery(value: string | undefined, name: string): number | null {
  if (value === undefined || value === "") return null;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) {
    throw new RelayError("bad_query", `Query parameter "${name}" must be an ISO date or time`);
  }
  return ms;
}

export function adminRoutes(deps: RelayDeps): Hono<RelayEnv> {
  const { auth, service } = deps;
  const app = new Hono<RelayEnv>();

  /**
   * One line per chat active in [since, until): the chat record (with client IP and user
   * agent) and its messages. Streamed, so a large export does not sit in memory.
   */
  app.get("/admin/transcripts", (c) => {
    auth.admin(c);
    const since = timeQuery(c.req.query("since"), "since");
    const until = timeQuery(c.req.query("until"), "until");
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        try {
          const active = (chat: ChatRecord) =>
            (since === null || Date.parse(chat.lastActivityAt) >= since) &&
            (until === null || Date.parse(chat.createdAt) < until);
          for await (const transcript of service.transcripts(active)) {
            controller.enqueue(encoder.encode(JSON.stringify(transcript) + "\n"));
          }
          controller.close();
        } catch (error) {
          deps.log.error("transcript export failed", { error });
          controller.error(error);
        }
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "application/x-ndjson; charset=utf-8",
        "cache-control": "no-store",
      },
    });
  });

  return app;
}
