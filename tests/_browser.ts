/**
 * Debian's Chromium driven by playwright-core (never a downloaded browser), for the page
 * tests. Every console error, uncaught exception and CSP violation is collected, so a test
 * can assert there were none.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { buildWeb, DEFAULT_WEB_OUT } from "../lib/web_build.ts";

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
