/**
 * The chat page in a real Chromium, served by a real relay, answered by a real worker and
 * the deterministic model server: what a visitor types, sees, loses or keeps.
 */
import { assert, assertEquals } from "./_assert.ts";
import { ask, enterCode, openPage, screenshot, terraAnswers, withPageStack } from "./_browser.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

Deno.test("a visitor enters the code, sees a streamed answer with tool activity, and keeps it after a reload", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser, {
      expected: [/status of 401/],
    });
    await page.goto(`${relay.url}/`);

    await enterCode(page, "not-the-code");
    await page.locator("#gate-error").filter({ hasText: /access code/i }).waitFor();
    assert(
      await page.getByRole("textbox", { name: "Access code" }).isVisible(),
      "the gate stays up",
    );

    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    await page.getByRole("textbox", { name: "Your message" }).waitFor();
    await ask(page, "[tool get_profile {}] Who is Morgan?");
    await page.locator(".message.visitor").filter({ hasText: "Who is Morgan?" }).waitFor();
    await terraAnswers(page).first().waitFor();
    const drawer = page.locator(".message.terra details.thinking").first();
    assert(await drawer.isVisible(), "the thinking drawer shows for an answer that used a tool");
    await drawer.locator("summary").click();
    const activity = await drawer.innerHTML();
    assert(/get_profile|profile/i.test(activity), activity);
    await screenshot(page, "page-desktop");

    await ask(page, "[answer]Morgan builds **gardens**.[/answer]");
    await terraAnswers(page).filter({ hasText: "Morgan builds gardens." }).waitFor();
    assertEquals(await terraAnswers(page).last().locator("strong").textContent(), "gardens");

    await page.reload();
    await terraAnswers(page).filter({ hasText: "Morgan builds gardens." }).waitFor();
    assertEquals(await page.locator(".message.visitor").count(), 2);
    assertEquals(await page.locator(".message.terra").count(), 2);

    // The same session on a phone-sized screen.
    const phone = await openPage(browser, { width: 375, height: 740 });
    await phone.page.goto(`${relay.url}/`);
    await enterCode(phone.page, TEST_SECRETS.CHAT_PASSWORD);
    await ask(phone.page, "[answer]Short and readable on a phone.[/answer]");
    await terraAnswers(phone.page).filter({ hasText: "on a phone" }).waitFor();
    const overflow = await phone.page.evaluate(
      "document.documentElement.scrollWidth - document.documentElement.clientWidth",
    );
    assertEquals(overflow, 0, "nothing sticks out sideways on a 375-px screen");
    await screenshot(phone.page, "page-phone");

    assertEquals(problems(), []);
    assertEquals(phone.problems(), []);
  });
});

Deno.test("a visitor stops an answer mid-stream and keeps what was written", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser);
    await page.goto(`${relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    await ask(page, "[long 2000]");
    // Pinned to the bottom while it streams; scrolled up, a badge offers the way back.
    await page.locator(".message.live .body").filter({ hasText: "word300" }).waitFor();
    const gap = "(() => { const l = document.getElementById('messages'); " +
      "return l.scrollHeight - l.scrollTop - l.clientHeight; })()";
    assert((await page.evaluate(gap) as number) < 60, "follows the stream");
    await page.locator("#messages").evaluate((list) => list.scrollTo({ top: 0 }));
    const badge = page.getByRole("button", { name: /New messages/ });
    await badge.waitFor();
    await badge.click();
    assert((await page.evaluate(gap) as number) < 60, "back at the newest text");
    await page.getByRole("button", { name: "Stop" }).click();
    await page.locator(".message.terra .tag").filter({ hasText: "Stopped" }).waitFor();
    const kept = await terraAnswers(page).last().textContent();
    assert(kept!.includes("word1 "), "the partial answer is kept");
    assert(!kept!.includes("word2000"), "the answer did not run to its end");
    assert(await page.getByRole("button", { name: "Stop" }).isHidden());
    assertEquals(problems(), []);
  }, { chunkDelayMs: 10 });
});

Deno.test("an answer streaming while the relay restarts is complete after the page reconnects", async () => {
  await withPageStack(async (stack) => {
    // The browser reports the refused connections while the relay is down; nothing else.
    const { page, problems } = await openPage(stack.browser, {
      expected: [/WebSocket connection to .* failed/, /ERR_CONNECTION_REFUSED/],
    });
    await page.goto(`${stack.relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    await ask(page, "[long 600]");
    await page.locator(".message.live .body").filter({ hasText: "word30" }).waitFor();
    await stack.restartRelay();
    await page.locator("#notice").filter({ hasText: /Reconnecting|Connecting/ }).or(
      page.locator(".message.terra:not(.live)"),
    ).first().waitFor();
    const answer = terraAnswers(page).filter({ hasText: "word600" });
    await answer.waitFor({ timeout: 60_000 });
    const words = (await answer.textContent())!.trim().split(/\s+/);
    assertEquals(words.length, 600, "every word once, none lost or repeated");
    assertEquals(words[599], "word600");
    assertEquals(await page.locator(".message.terra").count(), 1);
    assertEquals(problems(), []);
  }, { chunkDelayMs: 10 });
});

Deno.test("markup from the model or a visitor renders inert", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser);
    await page.goto(`${relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    const hostile = [
      `<img src=x onerror="window.__pwned='img'">`,
      `[click me](javascript:window.__pwned='link')`,
      `<a href="javascript:window.__pwned='a'">raw link</a>`,
      `<script>window.__pwned='script'</script>`,
      `<svg onload="window.__pwned='svg'"></svg>`,
      "`<b>code</b>`",
      "[site](https://example.com/)",
    ].join("\n\n");
    await ask(page, `<img src=y onerror="window.__pwned='visitor'"> [answer]${hostile}[/answer]`);
    const answer = terraAnswers(page).last();
    await answer.filter({ hasText: "click me" }).waitFor();
    await answer.locator("a", { hasText: "click me" }).click().catch(() => {});

    assertEquals(
      await page.evaluate(() => (globalThis as { __pwned?: string }).__pwned),
      undefined,
    );
    assertEquals(await page.locator(".messages img, .messages script, .messages svg").count(), 0);
    const hrefs = await page.locator(".messages a[href]").evaluateAll((links) =>
      links.map((a) => a.getAttribute("href"))
    );
    assertEquals(hrefs, ["https://example.com/"]);
    assertEquals(await answer.locator("code").textContent(), "<b>code</b>");
    assert((await answer.textContent())!.includes(`<a href="javascript:`), "raw HTML is text");
    const visitorText = await page.locator(".message.visitor .body").textContent();
    assert(visitorText!.includes("<img src=y"), "a visitor's markup is shown as text");
    assertEquals(problems(), []);
  });
});

Deno.test("keyboard only: code, question, new lines, counter, transcript, new chat, theme", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser);
    await page.goto(`${relay.url}/`);
    // The gate takes focus; the code and the question go in by keyboard alone.
    await page.keyboard.type(TEST_SECRETS.CHAT_PASSWORD);
    await page.keyboard.press("Enter");
    const box = page.getByRole("textbox", { name: "Your message" });
    await box.waitFor();
    assert(await box.evaluate((el) => el === el.ownerDocument.activeElement), "focus moves");
    const height = await box.evaluate((el) => el.getBoundingClientRect().height);
    await page.keyboard.type("first line");
    await page.keyboard.press("Shift+Enter");
    await page.keyboard.type("[answer]Two lines seen.[/answer]");
    assert((await box.inputValue()).includes("\n"), "Shift+Enter adds a line");
    assert(await box.evaluate((el, h) => el.getBoundingClientRect().height > h, height));
    await page.keyboard.press("Enter");
    await terraAnswers(page).filter({ hasText: "Two lines seen." }).waitFor();
    assertEquals(await box.inputValue(), "", "a sent message leaves the box");

    // Near the limit a counter appears; over it, nothing is sent.
    await box.fill("x".repeat(3900));
    assertEquals(await page.locator("#composer-count").textContent(), "3900 / 4000");
    await box.fill("");

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download" }).click(),
    ]);
    const path = await download.path();
    const transcript = await Deno.readTextFile(path!);
    assert(transcript.includes("Two lines seen."), transcript);
    assert(transcript.includes("first line\n[answer]"), transcript);

    const theme = page.getByRole("button", { name: /Theme/ });
    await theme.click();
    assertEquals(await page.evaluate("document.documentElement.dataset.theme"), "light");
    await theme.click();
    assertEquals(await page.evaluate("document.documentElement.dataset.theme"), "dark");
    assertEquals(
      await page.evaluate("getComputedStyle(document.body).backgroundColor"),
      "rgb(18, 22, 20)",
    );

    await page.getByRole("button", { name: "New chat" }).click();
    assertEquals(await page.locator(".message").count(), 0);
    await ask(page, "[answer]Fresh start.[/answer]");
    await terraAnswers(page).filter({ hasText: "Fresh start." }).waitFor();
    await page.reload();
    await terraAnswers(page).filter({ hasText: "Fresh start." }).waitFor();
    assertEquals(await page.locator(".message").count(), 2, "the new chat is the tab's chat");
    assertEquals(problems(), []);
  });
});
