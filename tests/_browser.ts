/**
 * Debian's Chromium driven by playwright-core (never a downloaded browser), for the page
 * tests. Every console error, uncaught exception and CSP violation is collected, so a test
 * can assert there were none; axe-core checks a page's accessibility in any state.
 */
import axe from "axe-core";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { type ModelServer, startModelServer } from "../lib/demo_model/model_server.ts";
import { buildWeb, DEFAULT_WEB_OUT } from "../lib/tasks/web_build.ts";
import { assertEquals } from "./_assert.ts";
import { type RelayProcess, startRelay } from "./_relay_process.ts";
import { startWorker, type WorkerProcess } from "./_worker_process.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const ARTIFACTS = new URL("../test-artifacts/", import.meta.url).pathname;

/** Builds the page once if `deno task web` has not (running a test file on its own). */
export async function ensurePageBuilt(): Promise<void> {
  if (!existsSync(join(DEFAULT_WEB_OUT, "index.html"))) await buildWeb();
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  }
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
    ],
    timeout: 30_000,
  });
}

/** A page plus everything that went wrong in it. */
export interface WatchedPage {
  page: Page;
  /** Console errors, page errors and CSP violations, minus the ones a test expects. */
  problems(): string[];
}

/**
 * Opens a page at the given viewport width. `expected` lists console errors the test
 * causes on purpose (the browser's own "failed to load resource: 401" for a wrong code).
 */
export async function openPage(
  browser: Browser,
  options: { width?: number; height?: number; expected?: RegExp[] } = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
    reducedMotion: "reduce",
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const seen: string[] = [];
  page.on("console", (message) => {
    const text = message.text();
    if (message.type() === "error" || /Content.Security.Policy/i.test(text)) seen.push(text);
  });
  page.on("pageerror", (error) => seen.push(`uncaught: ${error.message}`));
  // A CSP violation also fires an event in the page; count those that skip the console.
  await page.exposeFunction("__cspViolation", (text: string) => seen.push(`csp: ${text}`));
  await page.addInitScript(`document.addEventListener("securitypolicyviolation",
    (e) => globalThis.__cspViolation(e.violatedDirective + " " + e.blockedURI));`);
  return {
    page,
    problems: () => seen.filter((text) => !(options.expected ?? []).some((re) => re.test(text))),
  };
}

/** Saves a full-page screenshot into test-artifacts/. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** One rule axe-core found broken, with the nodes that break it. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * Runs axe-core (from npm) in the page as it is now and returns its violations. The source
 * goes in through the debugging protocol, which the page's strict CSP does not govern, so
 * the page under test keeps the very CSP it ships with.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  const loaded = await page.evaluate("typeof globalThis.axe === 'object'");
  if (!loaded) await page.evaluate(axeSource());
  // A string, not a function: this file is type-checked without the DOM library.
  return await page.evaluate(`globalThis.axe.run(document, { resultTypes: ["violations"] })
    .then((result) => result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => n.target.join(" ")),
    })))`) as AxeViolation[];
}

let axeCode: string | null = null;
function axeSource(): string {
  axeCode ??= (axe as unknown as { source: string }).source;
  return axeCode;
}

/** A relay serving the page, a worker, the deterministic model server and Chromium. */
export interface PageStack {
  relay: RelayProcess;
  browser: Browser;
  model: ModelServer;
  restartRelay(): Promise<void>;
  /** Kills the running worker and (unless `start` is false) starts a new one. */
  replaceWorker(start?: boolean): Promise<void>;
}

/** Options of `withPageStack()`. */
export interface PageStackOptions {
  /** Pause between the model's streamed chunks. @default {2} */
  chunkDelayMs?: number;
  /** Start without a worker (Terra away). @default {true} */
  worker?: boolean;
  /** Extra relay configuration. */
  relayEnv?: Record<string, string>;
}

/** Runs `fn` with a relay serving the page, a worker, the model server and Chromium. */
export async function withPageStack(
  fn: (stack: PageStack) => Promise<void>,
  options: PageStackOptions = {},
): Promise<void> {
  await ensurePageBuilt();
  const env = { RATE_LIMIT_MAX_PER_IP: "1000", ...options.relayEnv };
  let relay = await startRelay(env);
  const model = startModelServer({ chunkDelayMs: options.chunkDelayMs ?? 2 });
  let worker: WorkerProcess | null = null;
  let browser: Browser | null = null;
  const stack: PageStack = {
    get relay() {
      return relay;
    },
    get browser() {
      return browser!;
    },
    model,
    async replaceWorker(start = true) {
      await worker?.kill();
      worker = start ? await startWorker(relay.url, model.url, relay.dir) : null;
    },
    async restartRelay() {
      await relay.kill();
      relay = await startRelay(env, { dir: relay.dir, port: relay.port });
    },
  };
  try {
    if (options.worker !== false) worker = await startWorker(relay.url, model.url, relay.dir);
    browser = await launchBrowser();
    await fn(stack);
  } finally {
    await browser?.close().catch(() => {});
    await worker?.kill();
    await model.close();
    await relay.kill();
    await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
  }
}

/** Types the access code into the gate and submits it. */
export async function enterCode(page: Page, code: string): Promise<void> {
  await page.getByRole("textbox", { name: "Access code" }).fill(code);
  await page.getByRole("button", { name: "Start chatting" }).click();
}

/** Types a question into the composer and sends it with Enter. */
export async function ask(page: Page, text: string): Promise<void> {
  const box = page.getByRole("textbox", { name: "Your message" });
  await box.fill(text);
  await box.press("Enter");
}

/** Terra's finished answers (not the one being streamed). */
export const terraAnswers = (page: Page) => page.locator(".message.terra:not(.live) .body");

/** A phone's viewport (an iPhone SE-sized screen). */
export const PHONE = { width: 375, height: 740 };

/** Operator words a visitor must never read. */
export const OPERATOR_WORDS = /\b(worker|agent|relay)\b/i;

/** axe-core finds no violation in the page as it is now (`state` names it in the failure). */
export async function assertAccessible(page: Page, state: string): Promise<void> {
  const violations = await axeViolations(page);
  assertEquals(violations, [], `axe-core, ${state}: ${JSON.stringify(violations, null, 1)}`);
}

/** How far the newest content is below the visible part of the conversation. */
export function gapBelow(page: Page): Promise<number> {
  return page.evaluate(
    "(() => { const l = document.getElementById('messages'); " +
      "return l.scrollHeight - l.scrollTop - l.clientHeight; })()",
  ) as Promise<number>;
}

/** The text a visitor can read on the page. */
export async function visibleText(page: Page): Promise<string> {
  return await page.evaluate("document.body.innerText") as string;
}
