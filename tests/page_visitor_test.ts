/**
 * The visitor's experience (issue 16) in a real Chromium against a real relay, worker and
 * the deterministic model: the welcome and its suggestions from the operator's words, a
 * first answer in prose with its sources, Terra away and back, the status popover on a
 * phone, focus after Stop, what screen readers hear. axe-core finds nothing in any of these
 * states; screenshots at desktop and phone width go to test-artifacts/.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  ask,
  assertAccessible,
  enterCode,
  openPage,
  OPERATOR_WORDS,
  PHONE,
  screenshot,
  terraAnswers,
  visibleText,
  withPageStack,
} from "./_browser.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

Deno.test("the welcome and suggestions come from the site's words, and a suggestion click asks it", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const site = await (await fetch(`${relay.url}/api/site`)).json();
    const { page, problems } = await openPage(browser);
    await page.goto(`${relay.url}/`);
    // The gate: who Terra is and how to get a code, and no chat actions.
    await page.getByRole("textbox", { name: "Access code" }).waitFor();
    await page.locator("#gate-text").filter({ hasText: site.gateText }).waitFor();
    await page.locator("#gate-help").filter({ hasText: site.accessHelp.slice(0, 20) }).waitFor();
    assert(await page.getByRole("button", { name: "Download" }).isHidden(), "no Download");
    assert(await page.getByRole("button", { name: "New chat" }).isHidden(), "no New chat");
    assertEquals(await page.title(), `Chat with ${site.assistantName} · ${site.siteName}`);
    // The skip link leads somewhere the visitor can see.
    const skipTarget = await page.locator("#skip").getAttribute("href");
    assert(await page.locator(skipTarget!).isVisible(), `skip link target ${skipTarget}`);
    await assertAccessible(page, "gate");
    await screenshot(page, "visitor-gate-desktop");

    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    const welcome = page.locator(".welcome");
    await welcome.waitFor();
    const greetingStart = String(site.greeting).replace(/[*_`#\[\]]/g, "").slice(0, 15);
    await welcome.filter({ hasText: greetingStart }).waitFor();
    const suggestions = welcome.getByRole("button");
    assertEquals(await suggestions.allTextContents(), site.suggestions);
    assert(
      site.suggestions.length >= 3 && site.suggestions.length <= 4,
      `the content offers 3–4 suggested questions, not ${site.suggestions.length}`,
    );
    assert(await page.getByRole("button", { name: "Download" }).isVisible());
    await assertAccessible(page, "welcome");
    await screenshot(page, "visitor-welcome-desktop");

    await suggestions.first().click();
    await page.locator(".message.visitor").filter({ hasText: site.suggestions[0] }).waitFor();
    await terraAnswers(page).first().waitFor({ timeout: 30_000 });
    assertEquals(await welcome.getByRole("button").count(), 0, "suggestions leave once used");
    const box = page.getByRole("textbox", { name: "Your message" });
    assert(await box.evaluate((el) => el === el.ownerDocument.activeElement), "focus in the box");
    assert(!OPERATOR_WORDS.test(await visibleText(page)), await visibleText(page));
    assertEquals(problems(), []);

    const phone = await openPage(browser, PHONE);
    await phone.page.goto(`${relay.url}/`);
    await phone.page.getByRole("textbox", { name: "Access code" }).waitFor();
    await screenshot(phone.page, "visitor-gate-phone");
    await enterCode(phone.page, TEST_SECRETS.CHAT_PASSWORD);
    await phone.page.locator(".welcome .suggestion").first().waitFor();
    await assertAccessible(phone.page, "welcome on a phone");
    await screenshot(phone.page, "visitor-welcome-phone");
    assertEquals(phone.problems(), []);
  });
});

Deno.test("the README's question gets a prose answer with source links, and no demo answer shows JSON", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser);
    await page.goto(`${relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    await ask(page, "What does Morgan run at home?");
    const answer = page.locator(".message.terra:not(.live)").first();
    await answer.waitFor({ timeout: 30_000 });
    const text = (await answer.locator(".body").textContent())!;
    assert(text.split(/[.!?]\s/).length >= 2, `a few sentences: ${text}`);
    const sources = answer.locator(".sources a");
    assert(await sources.count() >= 1, "the answer names the pages it used");
    for (const link of await sources.all()) {
      const href = (await link.getAttribute("href"))!;
      assert(/^https?:\/\//.test(href), href);
      assertEquals(await link.getAttribute("rel"), "noopener noreferrer nofollow");
      assert((await link.textContent())!.trim().length > 0, "a source has a title");
    }
    await assertAccessible(page, "answer with sources");
    await screenshot(page, "visitor-sources-desktop");

    // Every shape of demo answer: one tool, several tools, a tool error, the site search.
    const questions = [
      "[tool get_profile {}] Who is Morgan?",
      '[tool search_site {"query":"garden"}] [tool get_profile {}] Tell me about the garden.',
      '[tool fetch_live_page {"url":"https://not-allowed.example/"}] Read that page.',
      "What are Morgan's projects?",
    ];
    for (const question of questions) {
      const before = await terraAnswers(page).count();
      await ask(page, question);
      await terraAnswers(page).nth(before).waitFor({ timeout: 30_000 });
    }
    const answers = await terraAnswers(page).allTextContents();
    assertEquals(answers.length, questions.length + 1);
    for (const shown of answers) {
      assert(!shown.includes('{"'), `no JSON in an answer: ${shown}`);
      assert(!shown.includes("\\n"), `no escaped line breaks in an answer: ${shown}`);
    }

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download" }).click(),
    ]);
    const transcript = await Deno.readTextFile((await download.path())!);
    const firstSource = (await sources.first().getAttribute("href"))!;
    assert(transcript.includes("Sources:") && transcript.includes(firstSource), transcript);

    const phone = await openPage(browser, PHONE);
    await phone.page.goto(`${relay.url}/`);
    await enterCode(phone.page, TEST_SECRETS.CHAT_PASSWORD);
    await ask(phone.page, "What does Morgan run at home?");
    await phone.page.locator(".message.terra:not(.live) .sources").first().waitFor({
      timeout: 30_000,
    });
    await assertAccessible(phone.page, "answer with sources on a phone");
    await screenshot(phone.page, "visitor-sources-phone");
    assertEquals(problems(), []);
    assertEquals(phone.problems(), []);
  });
});

Deno.test("Terra away: the page says so before the visitor types, waits truthfully, and shows the answer when Terra is back", async () => {
  await withPageStack(async (stack) => {
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    const site = await (await fetch(`${stack.relay.url}/api/site`)).json();
    const notice = page.locator("#notice");
    await notice.filter({ hasText: site.offlineText }).waitFor();
    await page.locator("#chain-summary").filter({ hasText: "offline" }).waitFor();
    assert(!OPERATOR_WORDS.test(await visibleText(page)), await visibleText(page));
    await assertAccessible(page, "away, before a question");
    await screenshot(page, "visitor-away-desktop");

    await ask(page, "[answer]Answered after the wait.[/answer]");
    await notice.filter({ hasText: "waiting for Terra to come online" }).waitFor();
    assert(!/next in line/i.test((await notice.textContent())!), "no false promise");
    await assertAccessible(page, "away, question waiting");

    // The popover says which part is missing, in a visitor's words.
    await page.locator("#chain summary").click();
    const links = page.locator("#chain-links li");
    await links.nth(4).waitFor();
    assertEquals(await links.locator("strong").allTextContents(), [
      "This page",
      "Chat server",
      "Terra's computer",
      "Answer service",
      "Language model",
    ]);
    assertEquals(await links.nth(2).getAttribute("data-status"), "offline");
    assert(!OPERATOR_WORDS.test(await page.locator("#chain-links").innerText()));
    await assertAccessible(page, "status popover open, away");
    await screenshot(page, "visitor-status-desktop");
    await page.keyboard.press("Escape");

    const phone = await openPage(stack.browser, PHONE);
    await phone.page.goto(`${stack.relay.url}/`);
    await enterCode(phone.page, TEST_SECRETS.CHAT_PASSWORD);
    await phone.page.locator("#notice").filter({ hasText: site.offlineText }).waitFor();
    await screenshot(phone.page, "visitor-away-phone");

    await stack.replaceWorker();
    await terraAnswers(page).filter({ hasText: "Answered after the wait." }).waitFor({
      timeout: 60_000,
    });
    await notice.filter({ hasText: site.offlineText }).waitFor({ state: "detached" }).catch(
      () => {},
    );
    await page.locator("#chain-summary").filter({ hasText: "online" }).waitFor({ timeout: 30_000 });
    assert(!(await notice.textContent())!.includes(site.offlineText), "no longer away");
    assertEquals(problems(), []);
    assertEquals(phone.problems(), []);
  }, { worker: false });
});

Deno.test("the status popover stays on a phone screen and closes on Esc and an outside click; the header is one row", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser, PHONE);
    await page.goto(`${relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    await page.getByRole("textbox", { name: "Your message" }).waitFor();

    // One row, every target at least 44 px.
    const header = await page.locator("header.bar").boundingBox();
    assert(header!.height < 70, `one row (${header!.height} px)`);
    for (const target of ["#chain summary", "#new-chat", "#download", "#theme"]) {
      const box = (await page.locator(target).boundingBox())!;
      assert(box.width >= 44 && box.height >= 44, `${target}: ${box.width}×${box.height}`);
    }

    const summary = page.locator("#chain summary");
    const popover = page.locator("#chain-links");
    await summary.click();
    await popover.locator("li").nth(4).waitFor();
    const box = (await popover.boundingBox())!;
    assert(box.x >= 0 && box.x + box.width <= PHONE.width, `inside 375 px: ${JSON.stringify(box)}`);
    await assertAccessible(page, "status popover on a phone");
    await screenshot(page, "visitor-status-phone");
    await page.keyboard.press("Escape");
    await popover.waitFor({ state: "hidden" });
    assert(
      await summary.evaluate((el) => el === el.ownerDocument.activeElement),
      "focus back on the status button",
    );

    await summary.click();
    await popover.waitFor();
    const below = box.y + box.height + 20;
    assert(below < PHONE.height - 100, "room below the popover to click");
    await page.mouse.click(PHONE.width / 2, below);
    await popover.waitFor({ state: "hidden" });
    assertEquals(problems(), []);
  });
});

Deno.test("after Stop by keyboard, focus is in the message box and the stopped answer is marked", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser);
    await page.goto(`${relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    await page.getByRole("textbox", { name: "Your message" }).waitFor();
    // Count what screen readers would hear: writes to the notice and to the announcer.
    await page.evaluate(`(() => {
      globalThis.__writes = { notice: 0, announced: [] };
      new MutationObserver(() => globalThis.__writes.notice++)
        .observe(document.getElementById("notice"), { childList: true, characterData: true, subtree: true });
      const announcer = document.getElementById("announcer");
      new MutationObserver(() => announcer.textContent && globalThis.__writes.announced.push(announcer.textContent))
        .observe(announcer, { childList: true, characterData: true, subtree: true });
    })()`);
    await ask(page, "[long 3000]");
    await page.locator(".message.live .body").filter({ hasText: "word100" }).waitFor();
    const stop = page.getByRole("button", { name: "Stop" });
    await stop.focus();
    await page.keyboard.press("Enter");
    await page.locator(".message.terra .tag").filter({ hasText: "Stopped" }).waitFor();
    await stop.waitFor({ state: "hidden" });
    const box = page.getByRole("textbox", { name: "Your message" });
    assert(await box.evaluate((el) => el === el.ownerDocument.activeElement), "focus in the box");
    // The thinking drawer's summary looks like a control: it has a marker.
    const marker = await page.evaluate(
      "getComputedStyle(document.querySelector('.thinking summary'), '::before').content",
    ) as string;
    assert(marker !== "none" && marker !== "", `disclosure marker: ${marker}`);
    // The answer was announced once, finished; the list itself is not a live region.
    assertEquals(await page.locator("#messages").getAttribute("aria-live"), null);
    await page.locator("#announcer").filter({ hasText: "stopped" }).waitFor();
    const writes = await page.evaluate("globalThis.__writes") as {
      notice: number;
      announced: string[];
    };
    assertEquals(writes.announced.length, 1, `announced once: ${JSON.stringify(writes.announced)}`);
    assert(
      writes.notice < 12,
      `the notice changes with the state, not per chunk (${writes.notice})`,
    );
    await assertAccessible(page, "stopped answer");
    assertEquals(problems(), []);
  }, { chunkDelayMs: 10 });
});

Deno.test("dark theme on a phone passes axe-core too", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser, PHONE);
    await page.goto(`${relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    const theme = page.getByRole("button", { name: /Theme/ });
    await theme.click();
    await theme.click();
    assertEquals(await page.evaluate("document.documentElement.dataset.theme"), "dark");
    await ask(page, "[tool get_profile {}] Who is Morgan?");
    await terraAnswers(page).first().waitFor({ timeout: 30_000 });
    await page.locator(".thinking summary").first().click();
    await assertAccessible(page, "dark, phone, answer with its drawer open");
    await screenshot(page, "visitor-dark-phone");
    assertEquals(problems(), []);
  });
});
