/**
 * The embeddable widget in a real Chromium, on a host page of another origin than the
 * relay (`localhost:<port>` against the relay's `127.0.0.1:<port>`), with hostile host CSS
 * and a strict host CSP: a real relay, worker and the deterministic model answer it.
 */
import axe from "axe-core";
import type { Page } from "playwright-core";
import { assert, assertEquals } from "./_assert.ts";
import {
  ask,
  enterCode,
  openPage,
  PHONE,
  screenshot,
  terraAnswers,
  withPageStack,
} from "./_browser.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

/** CSS that breaks anything which inherits or shares selectors with the host page. */
const HOSTILE_CSS = `
* { all: unset; }
html { font-size: 40px; }
button { display: none; }
div, section, ol, li, textarea { color: red; font-family: serif; line-height: 3; }
`;

interface HostSite {
  origin: string;
  relayUrl: string;
  close(): Promise<void>;
}

/** A static host site on localhost, serving pages with the widget's tag and a strict CSP. */
function startHostSite(): HostSite {
  const site: HostSite = { origin: "", relayUrl: "", close: async () => {} };
  const page = (title: string, tag: string, body = "") =>
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<link rel="stylesheet" href="/hostile.css"></head>
<body><main><h1>${title}</h1><p>Morgan's garden notes.</p>
<a href="/other">Another page</a>${body}</main>
${tag}
</body></html>`;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const { pathname } = new URL(request.url);
    const relay = site.relayUrl;
    const ws = relay.replace(/^http/, "ws");
    const csp = [
      "default-src 'none'",
      `script-src ${relay}`,
      `style-src 'self' ${relay}`,
      `connect-src ${relay} ${ws}`,
      "img-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
    ].join("; ");
    const floating = `<script src="${relay}/widget.js" async data-theme="light"
      data-accent="#6a2c91" data-label="Ask Terra"></script>`;
    const html = (text: string, policy = csp) =>
      new Response(text, {
        headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": policy },
      });
    if (pathname === "/hostile.css") {
      return new Response(HOSTILE_CSS, { headers: { "content-type": "text/css" } });
    }
    if (pathname === "/favicon.ico") return new Response(null, { status: 204 });
    if (pathname === "/") return html(page("Home", floating));
    if (pathname === "/other") return html(page("Other page", floating));
    if (pathname === "/no-style") {
      // The operator forgot the relay in style-src.
      return html(
        page("No style", floating),
        csp.replace(`style-src 'self' ${relay}`, "style-src 'self'"),
      );
    }
    if (pathname === "/left") {
      const left = `<script src="${relay}/widget.js" async data-position="bottom-left"
        data-open="true" data-label="Questions?"></script>`;
      return html(page("Left", left));
    }
    if (pathname === "/inline") {
      const inline = `<script src="${relay}/widget.js" async data-container="#chat-here"
        data-theme="dark" data-accent="#f5c542"></script>`;
      return html(page("Inline", inline, `<div id="chat-here"></div>`));
    }
    return new Response("not found", { status: 404 });
  });
  site.origin = `http://localhost:${server.addr.port}`;
  site.close = () => server.shutdown();
  return site;
}

/** Runs axe-core on the widget's shadow root only (the host page is not ours to judge). */
/**
 * `preload: false`: axe's CSS preload copies the shadow root's stylesheet into inline
 * `<style>` elements, which the host's strict CSP rightly refuses (a violation of axe's, not
 * the widget's); it serves only the orientation-lock rule.
 */
async function widgetViolations(page: Page): Promise<unknown[]> {
  if (!await page.evaluate("typeof globalThis.axe === 'object'")) {
    await page.evaluate((axe as unknown as { source: string }).source);
  }
  return await page.evaluate(`globalThis.axe.run(
      { include: [{ fromShadowDom: ["terrarium-chat", ".terrarium-widget"] }] },
      { resultTypes: ["violations"], preload: false })
    .then((r) => r.violations.map((v) => ({ id: v.id, help: v.help,
      nodes: v.nodes.map((n) => JSON.stringify(n.target)) })))`) as unknown[];
}

async function assertWidgetAccessible(page: Page, state: string): Promise<void> {
  const violations = await widgetViolations(page);
  assertEquals(violations, [], `axe-core in the widget, ${state}: ${JSON.stringify(violations)}`);
}

/** What the host page holds outside the widget: every element but the widget's one. */
const HOST_DOM = `(() => {
  const names = [...document.querySelectorAll("*")].map((e) => e.tagName.toLowerCase());
  return { names, head: document.head.innerHTML,
    globals: Object.getOwnPropertyNames(globalThis).filter((n) => !globalThis.__before.includes(n)) };
})()`;

/** The element focused inside the widget's shadow root ("" when focus is elsewhere). */
const FOCUSED = `(() => {
  const host = document.querySelector("terrarium-chat");
  if (document.activeElement !== host) return "";
  const el = host.shadowRoot.activeElement;
  return el ? (el.id || el.className || el.tagName.toLowerCase()) : "";
})()`;

Deno.test("the widget on another origin, hostile CSS and a strict CSP: code, question, streamed answer, reload, Esc, unread dot", async () => {
  const site = startHostSite();
  try {
    await withPageStack(async ({ relay, browser }) => {
      site.relayUrl = relay.url;
      // The browser's own line for the wrong code's 401; nothing else.
      const { page, problems } = await openPage(browser, { expected: [/status of 401/] });
      // The host's own globals, before the widget runs: only one may be added.
      await page.addInitScript("globalThis.__before = Object.getOwnPropertyNames(globalThis);");
      await page.goto(`${site.origin}/`);

      const launcher = page.getByRole("button", { name: "Ask Terra" });
      await launcher.waitFor();
      const box = (await launcher.boundingBox())!;
      assert(
        box.height >= 44 && box.height < 80,
        `the host's 40px rem leaves it alone: ${box.height}`,
      );
      assert(box.x + box.width > 1280 - 60, "bottom right");

      await launcher.click();
      const gateCode = page.getByRole("textbox", { name: "Access code" });
      await gateCode.waitFor();
      assertEquals(await page.evaluate(FOCUSED), "gate-code", "focus moves into the panel");
      await page.locator("terrarium-chat #gate-text:not(.pending)").waitFor();
      await assertWidgetAccessible(page, "gate");

      await enterCode(page, "not-the-code");
      await page.locator("terrarium-chat #gate-error").filter({ hasText: /access code/i })
        .waitFor();
      await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
      const box2 = page.getByRole("textbox", { name: "Your message" });
      await box2.waitFor();
      await page.locator("terrarium-chat .welcome").waitFor();
      const font = await box2.evaluate((el) =>
        (globalThis as unknown as { getComputedStyle(e: unknown): { fontSize: string } })
          .getComputedStyle(el).fontSize
      );
      assertEquals(font, "16px", "the host's font size does not reach in");

      await ask(page, "What does Morgan run at home?");
      const answer = terraAnswers(page).first();
      await answer.waitFor();
      const sources = page.locator("terrarium-chat .message.terra:not(.live) .sources a");
      assert(await sources.count() >= 1, "sources under the answer");
      await ask(page, "[tool get_profile {}] Who is Morgan?");
      await terraAnswers(page).nth(1).waitFor();
      const drawer = page.locator("terrarium-chat .message.terra details.thinking").nth(1);
      await drawer.locator("summary").click();
      assert(/profile/i.test(await drawer.innerText()), "the thinking drawer shows the tool");
      await assertWidgetAccessible(page, "answers");
      await screenshot(page, "widget-desktop");

      // Stop mid-stream keeps what was written.
      await ask(page, "[long 3000]");
      await page.locator("terrarium-chat .message.live .body").filter({ hasText: "word50" })
        .waitFor();
      await page.getByRole("button", { name: "Stop" }).click();
      await page.locator("terrarium-chat .message.terra .tag").filter({ hasText: "Stopped" })
        .waitFor();
      assertEquals(await terraAnswers(page).count(), 3);

      // A reload keeps the chat and the open panel; so does another page of the site.
      await page.reload();
      await terraAnswers(page).nth(2).waitFor();
      assertEquals(await page.locator("terrarium-chat .message.visitor").count(), 3);
      await page.getByRole("link", { name: "Another page" }).click();
      await page.waitForURL(`${site.origin}/other`);
      await terraAnswers(page).nth(2).waitFor();
      assertEquals(await page.locator("terrarium-chat .message.terra").count(), 3);

      // Esc closes, focus returns to the button; an answer arriving meanwhile marks it,
      // also on the next page of the site (the chat connects there in the background).
      await ask(page, "[long 1500]");
      await page.locator("terrarium-chat .message.live").waitFor();
      await page.keyboard.press("Escape");
      await page.locator("terrarium-chat .panel").waitFor({ state: "hidden" });
      assertEquals(await page.evaluate(FOCUSED), "launcher", "focus back on the button");
      await page.getByRole("link", { name: "Another page" }).click();
      await page.waitForLoadState("load");
      const marked = page.getByRole("button", { name: "Ask Terra (new answer)" });
      await marked.waitFor();
      assert(await page.locator("terrarium-chat .unread").isVisible(), "the unread dot shows");
      await assertWidgetAccessible(page, "closed, unread");
      await screenshot(page, "widget-unread-desktop");
      await marked.click();
      await terraAnswers(page).nth(3).waitFor();
      assert((await terraAnswers(page).nth(3).textContent())!.trim().endsWith("word1500"));
      assert(await page.locator("terrarium-chat .unread").isHidden(), "read once opened");
      assertEquals(await page.evaluate(FOCUSED), "composer-input");

      // Nothing of the widget outside its element; at most one global. What the host's own
      // HTML makes, parsed aside, is what the document holds, plus the widget's element.
      const served = await (await fetch(`${site.origin}/other`)).text();
      const parsed = await page.evaluate(`(() => {
        const doc = new DOMParser().parseFromString(${JSON.stringify(served)}, "text/html");
        return { names: [...doc.querySelectorAll("*")].map((e) => e.tagName.toLowerCase()),
          head: doc.head.innerHTML };
      })()`) as { names: string[]; head: string };
      const before = parsed.names;
      const headBefore = parsed.head;
      const after = await page.evaluate(HOST_DOM) as {
        names: string[];
        head: string;
        globals: string[];
      };
      assertEquals(after.names, [...before, "terrarium-chat"]);
      assertEquals(after.head, headBefore);
      // The test's own: the snapshot, and axe-core (with its core-js) injected for the checks.
      const ours = ["__before", "axe", "__core-js_shared__"];
      assertEquals(after.globals.filter((n) => !ours.includes(n)), ["TerrariumWidget"]);
      assertEquals(problems(), []);

      // A phone: the open panel takes the whole screen.
      const phone = await openPage(browser, PHONE);
      await phone.page.goto(`${site.origin}/`);
      await phone.page.getByRole("button", { name: "Ask Terra" }).click();
      await enterCode(phone.page, TEST_SECRETS.CHAT_PASSWORD);
      // A suggested question from the operator's welcome, clicked, is asked.
      const suggestion = phone.page.locator("terrarium-chat .suggestion").first();
      const question = (await suggestion.textContent())!;
      await suggestion.click();
      await phone.page.locator("terrarium-chat .message.visitor").filter({ hasText: question })
        .waitFor();
      await terraAnswers(phone.page).first().waitFor();
      await ask(phone.page, "[answer]Short and readable on a phone.[/answer]");
      await terraAnswers(phone.page).filter({ hasText: "on a phone" }).waitFor();
      const panel = (await phone.page.locator("terrarium-chat .panel").boundingBox())!;
      assertEquals([panel.x, panel.y, panel.width, panel.height], [
        0,
        0,
        PHONE.width,
        PHONE.height,
      ]);
      const gap = await phone.page.evaluate(`(() => {
        const l = document.querySelector("terrarium-chat").shadowRoot.getElementById("messages");
        return l.scrollHeight - l.scrollTop - l.clientHeight; })()`) as number;
      assert(gap < 60, `the newest answer is in view (${gap} px below)`);
      await screenshot(phone.page, "widget-phone");
      // Full screen is modal: Tab goes round inside the panel, never to the page behind.
      for (let i = 0; i < 12; i++) {
        await phone.page.keyboard.press(i % 4 === 3 ? "Shift+Tab" : "Tab");
        assert(await phone.page.evaluate(FOCUSED) !== "", `Tab ${i} stays in the panel`);
      }
      await phone.page.getByRole("textbox", { name: "Your message" }).focus();
      await assertWidgetAccessible(phone.page, "phone");
      await phone.page.keyboard.press("Escape");
      assertEquals(await phone.page.evaluate(FOCUSED), "launcher");
      assertEquals(phone.problems(), []);
    }, { relayEnv: { ALLOWED_ORIGINS: site.origin } });
  } finally {
    await site.close();
  }
});

Deno.test("the widget drawn inline in a container of the host page, dark", async () => {
  const site = startHostSite();
  try {
    await withPageStack(async ({ relay, browser }) => {
      site.relayUrl = relay.url;
      const { page, problems } = await openPage(browser);
      await page.goto(`${site.origin}/inline`);
      await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
      assertEquals(await page.locator("terrarium-chat .launcher").isHidden(), true, "no button");
      assertEquals(
        await page.evaluate(`document.querySelector("#chat-here > terrarium-chat") !== null`),
        true,
        "inside the container",
      );
      await ask(page, "[answer]Inline and **dark**.[/answer]");
      await terraAnswers(page).filter({ hasText: "Inline and dark." }).waitFor();
      await page.keyboard.press("Escape");
      assert(await page.locator("terrarium-chat .panel").isVisible(), "Esc does not hide it");
      await screenshot(page, "widget-inline-dark");
      await assertWidgetAccessible(page, "inline, dark");
      assertEquals(problems(), []);
    }, { relayEnv: { ALLOWED_ORIGINS: site.origin } });
  } finally {
    await site.close();
  }
});

Deno.test("the widget, open on load at the left: Terra away before a question, the status popover, an answer resumed across a relay restart", async () => {
  const site = startHostSite();
  try {
    await withPageStack(async (stack) => {
      site.relayUrl = stack.relay.url;
      // The browser reports the refused connections while the relay is down; nothing else.
      const { page, problems } = await openPage(stack.browser, {
        expected: [/WebSocket connection to .* failed/, /ERR_CONNECTION_REFUSED/],
      });
      await page.goto(`${site.origin}/left`);
      // Open on load, focus not taken from the host page (the visitor did not ask).
      await page.getByRole("textbox", { name: "Access code" }).waitFor();
      const launcher = (await page.getByRole("button", { name: "Questions?" }).boundingBox())!;
      assert(launcher.x < 100, `bottom left: ${launcher.x}`);
      assertEquals(await page.evaluate(FOCUSED), "", "opening on load takes no focus");
      await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);

      const notice = page.locator("terrarium-chat #notice");
      await notice.filter({ hasText: /offline/i }).waitFor();
      await ask(page, "[answer]Answered after the wait.[/answer]");
      await notice.filter({ hasText: "waiting for Terra to come online" }).waitFor();
      await assertWidgetAccessible(page, "away, question waiting");

      // The status popover: a click inside keeps it, Esc closes it and not the panel.
      await page.locator("terrarium-chat #chain summary").click();
      const links = page.locator("terrarium-chat #chain-links li");
      await links.nth(4).waitFor();
      await links.nth(2).click();
      assert(await links.nth(2).isVisible(), "a click inside the popover keeps it open");
      assertEquals(await links.nth(2).getAttribute("data-status"), "offline");
      await page.keyboard.press("Escape");
      await links.first().waitFor({ state: "hidden" });
      assert(await page.locator("terrarium-chat .panel").isVisible(), "the panel stays");

      await stack.replaceWorker();
      await terraAnswers(page).filter({ hasText: "Answered after the wait." }).waitFor({
        timeout: 60_000,
      });

      await ask(page, "[long 600]");
      await page.locator("terrarium-chat .message.live .body").filter({ hasText: "word30" })
        .waitFor();
      await stack.restartRelay();
      const answer = terraAnswers(page).filter({ hasText: "word600" });
      await answer.waitFor({ timeout: 60_000 });
      const words = (await answer.textContent())!.trim().split(/\s+/);
      assertEquals(words.length, 600, "every word once, none lost or repeated");
      assertEquals(await page.locator("terrarium-chat .message.terra").count(), 2);
      assertEquals(problems(), []);
    }, { worker: false, chunkDelayMs: 10, relayEnv: { ALLOWED_ORIGINS: site.origin } });
  } finally {
    await site.close();
  }
});

Deno.test("a host CSP without the relay in style-src: no unstyled widget, and the console says what to allow", async () => {
  const site = startHostSite();
  try {
    await withPageStack(async ({ relay, browser }) => {
      site.relayUrl = relay.url;
      const { page } = await openPage(browser);
      const warnings: string[] = [];
      page.on("console", (message) => {
        if (message.type() === "warning") warnings.push(message.text());
      });
      await page.goto(`${site.origin}/no-style`);
      const deadline = Date.now() + 10_000;
      while (!warnings.some((w) => w.includes("style-src")) && Date.now() < deadline) {
        await page.waitForTimeout(100);
      }
      const hint = warnings.find((w) => w.includes("style-src")) ?? "";
      assert(hint.includes(relay.url), `the warning names the origin to allow: ${warnings}`);
      assert(await page.locator("terrarium-chat .launcher").isHidden(), "nothing drawn unstyled");
    }, { worker: false, relayEnv: { ALLOWED_ORIGINS: site.origin } });
  } finally {
    await site.close();
  }
});
