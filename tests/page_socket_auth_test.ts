/**
 * The page's socket authenticates in its handshake (issue 11), in a real Chromium against a
 * real relay: a valid session goes live with the token in `Sec-WebSocket-Protocol`, and a
 * session the relay no longer accepts (its handshake is a 401, which a page cannot read)
 * sends the visitor back to the access code with the relay's reason, instead of retrying
 * for ever.
 */
import { assert, assertEquals } from "./_assert.ts";
import { ensurePageBuilt, launchBrowser, openPage } from "./_browser.ts";
import { request } from "./_clients.ts";
import { TEST_SECRETS, withRelay } from "./_relay_process.ts";

Deno.test("the page's socket carries its token in the handshake; a revoked token sends the visitor back to the code", async () => {
  await ensurePageBuilt();
  await withRelay({}, async (relay) => {
    const browser = await launchBrowser();
    try {
      const { page, problems } = await openPage(browser, {
        expected: [/WebSocket connection to .* failed/, /status of 401/],
      });
      const socketUrls: string[] = [];
      page.on("websocket", (ws) => socketUrls.push(ws.url()));
      await page.goto(`${relay.url}/`);
      await page.getByRole("textbox", { name: "Access code" }).fill(TEST_SECRETS.CHAT_PASSWORD);
      await page.getByRole("button", { name: "Start chatting" }).click();
      await page.getByRole("textbox", { name: "Your message" }).waitFor();
      const metrics = () =>
        request(`${relay.url}/metrics`, {
          headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
        });
      for (let i = 0; i < 100; i++) {
        if ((await metrics()).body.includes("terrarium_visitor_sockets 1")) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert((await metrics()).body.includes("terrarium_visitor_sockets 1"), "the page is live");
      // No secret in the URL and no auth frame exist any more: the subprotocol carried it.
      const url = new URL(socketUrls.at(-1) ?? "ws://none/");
      assertEquals([url.pathname, url.searchParams.has("accessCode")], ["/api/chat", false]);
      assert(url.searchParams.has("since"), url.href);
      // A token the relay does not accept (as after the access code changed): the socket's
      // handshake is refused, and the page asks for the code again, saying why.
      await page.evaluate(`localStorage.setItem("terrarium.session", JSON.stringify({
        token: "forged.token",
        expiresAt: new Date(Date.now() + 3600_000).toISOString(),
      }))`);
      await page.reload();
      await page.locator("#gate-error").filter({ hasText: /session has expired/i }).waitFor();
      assert(await page.getByRole("textbox", { name: "Access code" }).isVisible());
      assertEquals(problems(), []);
    } finally {
      await browser.close().catch(() => {});
    }
  });
});
