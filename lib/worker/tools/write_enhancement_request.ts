/**
 * `write_enhancement_request`: lets the model note what a visitor wished Terra could do, as
 * a Markdown file in `ENHANCEMENT_DIR` for the site owner. The file name is built from the
 * date, a slug of the title and random letters (never from model text alone), sizes are
 * capped, each chat may write only a few per hour, and all chats together at most
 * `ENHANCEMENT_REQUESTS_PER_DAY` per UTC day (issue 11: new chats must not bring new quota).
 * The day's count is read from the files themselves, so a restart does not reset it.
 */
import { join } from "node:path";
import { z } from "zod";
import { defineTool, type Tool, type ToolContext, ToolError } from "../tool_registry.ts";

const PER_CHAT_PER_HOUR = 3;
const HOUR_MS = 3_600_000;

/** A file-name-safe slug of `text`: lowercase letters, digits and dashes, at most 40. */
export function slug(text: string): string {
  return text.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "").replace(
    /[^a-z0-9]+/g,
    "-",
  ).replace(/^-+|-+$/g, "")
    .slice(0, 40).replace(/-+$/, "") || "request";
}

/** How many requests `dir` already holds for the UTC day `day` ("2026-12-02"). */
export async function requestsOn(dir: string, day: string): Promise<number> {
  let count = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.startsWith(`${day}-`) && entry.name.endsWith(".md")) count++;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return count;
}

/** The tool, with its own per-chat rate memory. */
export function writeEnhancementRequest(): Tool {
  const recent = new Map<string, number[]>();
  // Count-then-write runs one call at a time, so parallel turns cannot overshoot the day's cap.
  let queue: Promise<unknown> = Promise.resolve();
  return defineTool({
    name: "write_enhancement_request",
    description:
      "Record a visitor's request for something Terra cannot do yet, for the site owner to read later.",
    schema: z.object({
      title: z.string().min(3).max(120),
      details: z.string().min(1).max(4000),
    }),
    activity: () => "Writing down the request for Morgan…",
    run(args, context) {
      const turn = queue.then(() => write(args, context));
      queue = turn.catch(() => {});
      return turn;
    },
  });

  async function write(
    { title, details }: { title: string; details: string },
    { config, chatId }: ToolContext,
  ) {
    const now = Date.now();
    const times = (recent.get(chatId) ?? []).filter((t) => now - t < HOUR_MS);
    if (times.length >= PER_CHAT_PER_HOUR) {
      throw new ToolError("rate_limited", "This chat has already sent enough requests this hour");
    }
    const stamp = new Date(now).toISOString();
    const perDay = config.enhancementRequestsPerDay;
    if (await requestsOn(config.enhancementDir, stamp.slice(0, 10)) >= perDay) {
      throw new ToolError(
        "daily_limit",
        `Terra has noted the most requests it may today (${perDay}); please ask again tomorrow`,
      );
    }
    const id = `${stamp.slice(0, 10)}-${slug(title)}-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.mkdir(config.enhancementDir, { recursive: true });
    await Deno.writeTextFile(
      join(config.enhancementDir, `${id}.md`),
      `# ${title.replace(/\s+/g, " ")}\n\n- chat: ${chatId}\n- at: ${stamp}\n\n${details}\n`,
      { createNew: true },
    );
    recent.set(chatId, [...times, now]);
    return { saved: true, id };
  }
}
