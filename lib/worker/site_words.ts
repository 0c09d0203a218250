/**
 * The operator's site words (issue 16): site name, Terra's name, gate text, how to get a
 * code, offline text, greeting and suggested questions, from `content/welcome.md`:
 *
 *     ---
 *     siteName: Morgan Example
 *     suggestions:
 *       - What does Morgan run at home?
 *     ---
 *     Hi, I'm **Terra**. (the greeting, Markdown)
 *
 * One `key: value` per line between the `---` lines (a value may wrap onto indented
 * lines), `suggestions:` followed by `- ` items; keys left out keep the built-in words. The
 * worker publishes them to the relay at start, after each reconnect and when the file
 * changes, so the static page needs no rebuild.
 */
import { join } from "node:path";
import type { Logger } from "../log.ts";
import { DEFAULT_SITE_PROFILE, SiteProfile } from "../protocol.ts";
import type { RelayClient } from "./relay_client.ts";

/** The file, relative to the content dir. */
export const SITE_WORDS_FILE = "welcome.md";
/** How often the file is read again for changes. */
const CHECK_INTERVAL_MS = 30_000;

const TEXT_KEYS = ["siteName", "assistantName", "gateText", "accessHelp", "offlineText"] as const;

/** A site words file that cannot be used, with the line that is wrong. */
export class SiteWordsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SiteWordsError";
  }
}

/** Parses the file's text into a checked `SiteProfile`. */
export function parseSiteWords(text: string, path = SITE_WORDS_FILE): SiteProfile {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  if (lines[0]?.trim() !== "---") {
    throw new SiteWordsError(`Cannot read "${path}": it must start with a "---" line`);
  }
  const end = lines.findIndex((line, i) => i > 0 && line.trim() === "---");
  if (end === -1) throw new SiteWordsError(`Cannot read "${path}": no closing "---" line`);
  const fields: Record<string, string> = {};
  const suggestions: string[] = [];
  let current: string | null = null;
  for (let i = 1; i < end; i++) {
    const line = lines[i]!;
    const where = `"${path}" line ${i + 1}`;
    if (!line.trim() || line.trimStart().startsWith("#")) continue;
    const item = /^\s+-\s+(.*)$/.exec(line);
    if (item && current === "suggestions") {
      suggestions.push(unquote(item[1]!));
      continue;
    }
    const field = /^([A-Za-z]+):\s*(.*)$/.exec(line);
    if (field) {
      const [, key, value] = field as unknown as [string, string, string];
      if (key !== "suggestions" && !(TEXT_KEYS as readonly string[]).includes(key)) {
        throw new SiteWordsError(
          `Cannot read ${where}: unknown key "${key}" (known: ${
            [...TEXT_KEYS, "suggestions"].join(", ")
          })`,
        );
      }
      if (key === "suggestions" && value.trim()) {
        throw new SiteWordsError(`Cannot read ${where}: list suggestions as "  - …" lines`);
      }
      current = key;
      fields[key] = unquote(value);
      continue;
    }
    // An indented line continues the value above it (long gate texts wrap).
    if (/^\s+\S/.test(line) && current && current !== "suggestions") {
      fields[current] = `${fields[current]} ${unquote(line.trim())}`.trim();
      continue;
    }
    throw new SiteWordsError(`Cannot read ${where}: expected "key: value" or "  - item"`);
  }
  const greeting = lines.slice(end + 1).join("\n").trim();
  const profile = {
    ...DEFAULT_SITE_PROFILE,
    ...Object.fromEntries(TEXT_KEYS.filter((k) => fields[k]).map((k) => [k, fields[k]])),
    ...(greeting ? { greeting } : {}),
    suggestions: fields.suggestions !== undefined ? suggestions : DEFAULT_SITE_PROFILE.suggestions,
  };
  const checked = SiteProfile.safeParse(profile);
  if (!checked.success) {
    const problems = checked.error.issues.map((issue) =>
      `${issue.path.join(".") || "file"}: ${issue.message}`
    );
    throw new SiteWordsError(`Cannot use "${path}": ${problems.join("; ")}`);
  }
  return checked.data;
}

function unquote(value: string): string {
  const v = value.trim();
  return /^(["']).*\1$/.test(v) ? v.slice(1, -1) : v;
}

/** Reads the site words of `contentDir`; null when there is no file (the relay's defaults). */
export async function loadSiteWords(contentDir: string): Promise<SiteProfile | null> {
  const path = join(contentDir, SITE_WORDS_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new SiteWordsError(`Cannot read "${path}": ${(error as Error).message}`);
  }
  return parseSiteWords(text, path);
}

/** Publishes the site words: now, after each reconnect, and when the file changes. */
export class SiteWordsPublisher {
  #contentDir: string;
  #relay: Pick<RelayClient, "publishSite">;
  #log: Logger;
  #profile: SiteProfile | null;
  #timer: ReturnType<typeof setInterval> | null = null;

  /** `initial`: the words read at start (so a broken file stops the worker there). */
  constructor(
    contentDir: string,
    initial: SiteProfile | null,
    deps: { relay: Pick<RelayClient, "publishSite">; log: Logger },
  ) {
    this.#contentDir = contentDir;
    this.#profile = initial;
    this.#relay = deps.relay;
    this.#log = deps.log;
  }

  /** Publishes now and starts watching the file. */
  start(): void {
    void this.publish();
    this.#timer = setInterval(() => void this.#check(), CHECK_INTERVAL_MS);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Sends the current words (a relay that restarted with an empty store gets them again). */
  async publish(): Promise<void> {
    if (!this.#profile) return;
    try {
      await this.#relay.publishSite(this.#profile);
    } catch (error) {
      this.#log.warn("publishing the site words failed", { error });
    }
  }

  async #check(): Promise<void> {
    let next: SiteProfile | null;
    try {
      next = await loadSiteWords(this.#contentDir);
    } catch (error) {
      // A half-edited file must not take the words away: keep the last good ones.
      this.#log.warn("site words not updated", { error: (error as Error).message });
      return;
    }
    if (!next || JSON.stringify(next) === JSON.stringify(this.#profile)) return;
    this.#profile = next;
    this.#log.info("site words changed; publishing");
    await this.publish();
  }
}
