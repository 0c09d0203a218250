/**
 * When things go wrong, as a visitor sees it (issue 16), in a real Chromium against a real
 * relay, worker and the deterministic model: a model failure as one row with Retry, a cut
 * stream kept and marked interrupted, auto-follow after an error on a phone, limits and
 * lockouts as whole sentences with a countdown, an origin refusal that keeps the session.
 * axe-core finds nothing in any of these states; screenshots go to test-artifacts/.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  ask,
  assertAccessible,
  enterCode,
  gapBelow,
  openPage,
  OPERATOR_WORDS,
  PHONE,
  screenshot,
  terraAnswers,
  withPageStack,
} from "./_browser.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

Deno.test("a model failure is one error row under the question, and Retry answers it", async () => {
  await withPageStack(async (stack) => {
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    await page.locator("#chain-summary").filter({ hasText: "online" }).waitFor();

    stack.model.setFault("error500");
    await ask(page, "[answer]Worth retrying.[/answer]");
    const row = page.locator("li.failure");
    await row.waitFor({ timeout: 60_000 });
    assertEquals(await row.count(), 1, "one row");
    assertEquals(await page.locator(".message.terra").count(), 0, "no failure as Terra's words");
    const rowText = (await row.locator("p").textContent())!;
    assert(rowText.length > 10 && !/undefined|Error:|\bat /.test(rowText), rowText);
    assert(!OPERATOR_WORDS.test(rowText), rowText);
    // The header learns of the failure from the turn, not 300 s later.
    await page.locator("#chain-dot:not([data-status='online'])").waitFor({ timeout: 30_000 });
    assert(await page.getByRole("button", { name: "Stop" }).isHidden());
    await assertAccessible(page, "failed turn");
    await screenshot(page, "visitor-error-desktop");

    // After a reload the failure is still one row under its question, from the store.
    await page.reload();
    await row.waitFor();
    assertEquals(await row.count(), 1, "one row after a reload");
    assertEquals(await page.locator(".message.terra").count(), 0);

    stack.model.setFault("none");
    const requestsBefore = stack.model.requests.length;
    await row.getByRole("button", { name: /Retry/ }).click();
    await terraAnswers(page).filter({ hasText: "Worth retrying." }).waitFor({ timeout: 60_000 });
    await row.waitFor({ state: "detached" });

    // Neither the store nor the model's next history holds the error sentence.
    const token = await page.evaluate(
      "JSON.parse(localStorage.getItem('terrarium.session')).token",
    ) as string;
    const chatId = await page.evaluate("sessionStorage.getItem('terrarium.chatId')") as string;
    const stored = await (await fetch(`${stack.relay.url}/api/chat/${chatId}/messages`, {
      headers: { authorization: `Bearer ${token}` },
    })).json() as { sender: string; content: string; failure?: unknown }[];
    assertEquals(stored.map((m) => m.sender), ["Visitor", "Terra"]);
    assertEquals(stored[0]!.failure, undefined, "the retried message is no longer failed");
    const history = JSON.stringify(stack.model.requests.slice(requestsBefore).map((r) => r.body));
    assert(!history.includes(rowText), "the error sentence never reaches the model");
    assertEquals(problems(), []);
  });
});

Deno.test("on a phone, the answer after an error notice streams in view: auto-follow re-pins on send", async () => {
  await withPageStack(async (stack) => {
    const { page, problems } = await openPage(stack.browser, PHONE);
    await page.goto(`${stack.relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    await ask(page, "[long 120]");
    await terraAnswers(page).filter({ hasText: "word120" }).waitFor();

    stack.model.setFault("error500");
    await ask(page, "[answer]This one fails.[/answer]");
    await page.locator("li.failure").waitFor({ timeout: 60_000 });
    stack.model.setFault("none");
    await screenshot(page, "visitor-error-phone");

    await ask(page, "[long 400]");
    await page.locator(".message.live .body").filter({ hasText: "word200" }).waitFor();
    assert(await gapBelow(page) < 60, `follows the stream (gap ${await gapBelow(page)} px)`);
    await terraAnswers(page).filter({ hasText: "word400" }).waitFor({ timeout: 30_000 });
    assert(await gapBelow(page) < 60, `ends at the bottom (gap ${await gapBelow(page)} px)`);
    assert(await page.getByRole("button", { name: /New messages/ }).isHidden());

    // Scrolled up to read, the text stays where it is while notices come and go below it.
    await ask(page, "[long 500]");
    await page.locator(".message.live .body").filter({ hasText: "word150" }).waitFor();
    await page.locator("#messages").evaluate((list) => list.scrollTo({ top: 200 }));
    const reading = page.locator(".message.visitor").first();
    const before = (await reading.boundingBox())!.y;
    await terraAnswers(page).filter({ hasText: "word500" }).waitFor({ timeout: 30_000 });
    await page.locator("#notice").waitFor({ state: "hidden" });
    assertEquals((await reading.boundingBox())!.y, before, "nothing moved under the reader");
    const badge = page.getByRole("button", { name: /New messages/ });
    await badge.waitFor();
    await badge.click();
    assert(await gapBelow(page) < 60, "back at the newest text");
    assertEquals(problems(), []);
  }, { chunkDelayMs: 5 });
});

Deno.test("a limit is a whole sentence with a countdown", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser, {
      expected: [/status of 429/],
    });
    await page.goto(`${relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    await ask(page, "[answer]First.[/answer]");
    await page.locator(".message.visitor").first().waitFor();
    await ask(page, "[answer]Second.[/answer]");
    const notice = page.locator('#notice[data-tone="error"]');
    await notice.waitFor();
    const text = (await notice.innerText()).replace(/\s+/g, " ");
    assert(/[.!?] Try again in \d+ s\.$/.test(text), `a sentence, then the countdown: "${text}"`);
    const first = Number(/in (\d+) s/.exec(text)![1]);
    await notice.filter({ hasText: new RegExp(`in (?!${first} )\\d+ s|try again now`) })
      .or(page.locator("#notice:not([data-tone='error'])")).first().waitFor({ timeout: 15_000 });
    await assertAccessible(page, "limit notice");
    assertEquals(problems(), []);
  }, { worker: false, relayEnv: { MAX_PENDING_TURNS_PER_CHAT: "1" } });
});

Deno.test("a page on an address the relay does not allow is told so and keeps its session", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser, {
      expected: [/WebSocket/],
    });
    await page.goto(`${relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    const notice = page.locator("#notice");
    await notice.filter({ hasText: "is not allowed to connect" }).waitFor();
    assert((await notice.textContent())!.includes(new URL(relay.url).origin));
    assert(await page.getByRole("textbox", { name: "Access code" }).isHidden(), "no gate");
    assert(await page.evaluate("localStorage.getItem('terrarium.session') !== null"));
    await assertAccessible(page, "origin refused");
    await page.reload();
    await notice.filter({ hasText: "is not allowed to connect" }).waitFor();
    assert(await page.getByRole("textbox", { name: "Access code" }).isHidden(), "still no gate");
    assertEquals(problems(), []);
  }, { relayEnv: { ALLOWED_ORIGINS: "https://elsewhere.example" } });
});

Deno.test("a stream cut mid-answer keeps its text marked interrupted, not stopped, and Retry answers it", async () => {
  await withPageStack(async (stack) => {
    const { page, problems } = await openPage(stack.browser);
    await page.goto(`${stack.relay.url}/`);
    await enterCode(page, TEST_SECRETS.CHAT_PASSWORD);
    await page.getByRole("textbox", { name: "Your message" }).waitFor();
    stack.model.setFault("cut");
    await ask(page, "[long 60]");
    const row = page.locator("li.failure");
    await row.waitFor({ timeout: 60_000 });
    const partial = page.locator(".message.terra:not(.live)").first();
    await partial.locator(".tag").filter({ hasText: "Interrupted" }).waitFor();
    assertEquals(await page.locator(".message.terra .tag", { hasText: "Stopped" }).count(), 0);
    assert((await partial.locator(".body").textContent())!.includes("word1"), "partial kept");
    assertEquals(await row.count(), 1);
    assertEquals(
      await row.evaluate((el) => el.previousElementSibling?.classList.contains("terra")),
      true,
      "the row follows the text that was cut off",
    );
    await assertAccessible(page, "interrupted answer with its failure row");
    await screenshot(page, "visitor-interrupted-desktop");

    stack.model.setFault("none");
    await row.getByRole("button", { name: /Retry/ }).click();
    await terraAnswers(page).filter({ hasText: "word60" }).waitFor({ timeout: 60_000 });
    await row.waitFor({ state: "detached" });
    assertEquals(problems(), []);
  }, { chunkDelayMs: 5 });
});

Deno.test("a locked gate says so in a whole sentence with a countdown", async () => {
  await withPageStack(async ({ relay, browser }) => {
    const { page, problems } = await openPage(browser, {
      expected: [/status of 401/, /status of 429/],
    });
    await page.goto(`${relay.url}/`);
    const error = page.locator("#gate-error");
    const ready = page.getByRole("button", { name: "Start chatting" }).and(
      page.locator(":not([disabled])"),
    );
    for (let attempt = 0; attempt < 4; attempt++) {
      await enterCode(page, `wrong-${attempt}`);
      // The button is disabled from the click until the answer: then either it is enabled
      // again (a wrong code) or the lockout's countdown shows (it stays disabled). The text
      // of the previous answer is still there meanwhile, so it tells nothing.
      await error.locator(".countdown").or(ready).waitFor();
      if (await error.locator(".countdown").count()) break;
      await error.filter({ hasText: /\S/ }).waitFor();
    }
    await error.locator(".countdown").waitFor();
    const text = (await error.innerText()).replace(/\s+/g, " ");
    assert(/[.!?] Try again in \d+ s\.$/.test(text), `a sentence, then the countdown: "${text}"`);
    assert(await page.getByRole("button", { name: "Start chatting" }).isDisabled());
    await assertAccessible(page, "locked gate");
    await screenshot(page, "visitor-locked-gate-desktop");
    assertEquals(problems(), []);
  }, { relayEnv: { ACCESS_CODE_MAX_FAILURES: "2", ACCESS_CODE_LOCKOUT_SECONDS: "60" } });
});
