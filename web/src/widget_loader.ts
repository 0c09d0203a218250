/// <reference lib="dom" />
/**
 * `widget.js`, the one tag a site pastes into its template: draws Terra's button (or an
 * inline panel) inside a Shadow DOM and loads the chat itself (`widget_chat.ts`, a
 * fingerprinted chunk) on first open. It adds one element and the `TerrariumWidget` global
 * to the host page, nothing inline, so a strict Content-Security-Policy holds.
 *
 * Configured by the tag's `data-*` attributes: `data-api-base` (default: the build's
 * `--api-base`, else `api/` beside this script), `data-position` (`bottom-right` | `bottom-left`), `data-open` (`true`: open on
 * load), `data-container` (a selector: drawn inline there, no button), `data-theme`
 * (`auto` | `light` | `dark`), `data-accent` (a CSS colour), `data-label` (the button's text).
 *
 * Kept free of imports: this file is what every page of the host site downloads.
 */

/** What the chat chunk exports (see `widget_chat.ts`). */
interface ChatModule {
  mountChat(options: {
    panel: HTMLElement;
    apiBase: URL;
    inline: boolean;
    onClose(): void;
    onAnswer(): void;
  }): { focus(): void; shown(): void };
}

interface WidgetApi {
  open(): void;
  close(): void;
}

// A classic script: everything inside this function, so nothing becomes a global.
(() => {
  /** Replaced by the build with the fingerprinted names, relative to this script. */
  const CHAT_CHUNK = "__TERRARIUM_WIDGET_CHAT__";
  const STYLESHEET = "__TERRARIUM_WIDGET_STYLE__";
  /** The API's default: `deno task web --api-base=URL`, else `api/` beside this script. */
  const DEFAULT_API = "__TERRARIUM_WIDGET_API__";
  const script = document.currentScript as HTMLScriptElement | null;
  const host = globalThis as unknown as { TerrariumWidget?: WidgetApi };
  // Pasted twice (a template and a partial): one widget.
  if (!script?.src || host.TerrariumWidget) return;
  let widget: WidgetApi | null = null;
  host.TerrariumWidget = { open: () => widget?.open(), close: () => widget?.close() };
  const data = script.dataset;
  const src = new URL(script.src);
  const apiBase = new URL(data.apiBase || DEFAULT_API, src);
  if (!apiBase.pathname.endsWith("/")) apiBase.pathname += "/";
  const stateKey = `terrarium.widget:${apiBase.href}`;
  const remembered = (() => {
    try {
      return JSON.parse(sessionStorage.getItem(stateKey) ?? "{}") as {
        open?: boolean;
        unread?: boolean;
        active?: boolean;
      };
    } catch {
      return {};
    }
  })();
  const remember = (state: { open: boolean; unread: boolean; active: boolean }) => {
    try {
      sessionStorage.setItem(stateKey, JSON.stringify(state));
    } catch {
      // Storage refused (private mode, a full quota): the widget just forgets.
    }
  };

  const make = <K extends keyof HTMLElementTagNameMap>(tag: K, className: string) => {
    const node = document.createElement(tag);
    node.className = className;
    return node;
  };

  function mount(): void {
    const selector = data.container?.trim();
    const container = selector ? document.querySelector(selector) : null;
    if (selector && !container) {
      // deno-lint-ignore no-console
      console.warn(`Terra's widget: no element matches data-container="${selector}"`);
      return;
    }
    const inline = Boolean(container);
    const element = document.createElement("terrarium-chat");
    const shadow = element.attachShadow({ mode: "open" });
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = new URL(STYLESHEET, src).href;

    const root = make("div", "terrarium-widget");
    // Held back until its stylesheet is in, so the host never sees it unstyled.
    root.hidden = true;
    root.dataset.theme = ["light", "dark"].includes(data.theme ?? "") ? data.theme! : "auto";
    root.dataset.position = data.position === "bottom-left" ? "bottom-left" : "bottom-right";
    root.dataset.mode = inline ? "inline" : "floating";
    const accent = data.accent?.trim();
    // A property set through the CSSOM, not a style attribute: a strict CSP allows it.
    if (accent && CSS.supports("color", accent)) root.style.setProperty("--brand", accent);

    const panel = make("div", "panel");
    panel.id = "panel";
    const label = data.label?.trim() || "Ask Terra";
    const button = make("button", "launcher");
    button.type = "button";
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", "panel");
    const text = make("span", "launcher-label");
    text.textContent = label;
    // The dot is a shape; its words are in the button's name.
    const dot = make("span", "unread");
    dot.hidden = true;
    // A speech bubble, drawn (no emoji font, no image request).
    const svg = "http://www.w3.org/2000/svg";
    const icon = document.createElementNS(svg, "svg");
    icon.setAttribute("class", "launcher-icon");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(svg, "path");
    path.setAttribute(
      "d",
      "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z",
    );
    icon.append(path);
    button.append(icon, text, dot);

    let open = false;
    let unread = Boolean(remembered.unread);
    let chat: ReturnType<ChatModule["mountChat"]> | null = null;
    let loading: Promise<void> | null = null;

    // Full screen (a phone), the panel is modal: Tab goes round inside it.
    const fullScreen = matchMedia("(max-width: 600px)");
    const sync = () => {
      panel.hidden = !inline && !open;
      button.hidden = inline;
      button.setAttribute("aria-expanded", String(open));
      dot.hidden = !unread || open;
      if (dot.hidden) button.removeAttribute("aria-label");
      else button.setAttribute("aria-label", `${label} (new answer)`);
      root.dataset.open = String(open);
      if (!inline) panel.setAttribute("aria-modal", String(fullScreen.matches));
      remember({ open, unread, active: Boolean(loading) });
    };

    const load = (): Promise<void> =>
      loading ??= import(new URL(CHAT_CHUNK, src).href).then((module: ChatModule) => {
        panel.replaceChildren();
        sync();
        chat = module.mountChat({
          panel,
          apiBase,
          inline,
          onClose: () => api.close(),
          onAnswer: () => {
            if (open || inline) return;
            unread = true;
            sync();
          },
        });
      }).catch((error) => {
        loading = null;
        const failed = make("p", "load-error");
        failed.setAttribute("role", "alert");
        failed.textContent = "The chat could not be loaded. Please try again later.";
        panel.replaceChildren(failed);
        throw error;
      });

    /** Opens the panel; `focus`: the visitor asked, so focus moves in (never on load). */
    const show = (focus: boolean) => {
      if (open && !inline) return focus && chat?.focus();
      open = true;
      unread = false;
      sync();
      if (!chat) {
        const wait = make("p", "loading");
        wait.setAttribute("role", "status");
        wait.textContent = "Loading the chat…";
        panel.replaceChildren(wait);
        // Focus moves in at once; to the code or message box when the chat is drawn.
        if (focus) panel.focus();
      }
      load().then(() => {
        chat?.shown();
        if (open && focus) chat?.focus();
      }).catch(() => {}); // said in the panel
    };

    const api: WidgetApi = {
      open: () => show(true),
      close() {
        if (inline || !open) return;
        open = false;
        sync();
        button.focus();
      },
    };
    widget = api;

    button.addEventListener("click", () => open ? api.close() : api.open());
    panel.addEventListener("keydown", (event) => {
      // A popover inside the panel takes its own Esc first (and says so).
      if (event.key === "Escape" && !event.defaultPrevented && !inline) {
        event.preventDefault();
        api.close();
      }
      if (event.key !== "Tab" || inline || !fullScreen.matches) return;
      const stops = [
        ...panel.querySelectorAll<HTMLElement>(
          "button, input, textarea, summary, [href], [tabindex='0']",
        ),
      ].filter((node) => node.getClientRects().length > 0);
      const edge = event.shiftKey ? stops[0] : stops.at(-1);
      const active = shadow.activeElement;
      if (edge && (active === edge || active === panel)) {
        event.preventDefault();
        (event.shiftKey ? stops.at(-1) : stops[0])!.focus();
      }
    });

    panel.tabIndex = -1;
    panel.setAttribute("role", inline ? "region" : "dialog");
    panel.setAttribute("aria-label", label);
    root.append(panel, button);
    shadow.append(link, root);
    link.addEventListener("load", () => root.hidden = false, { once: true });
    link.addEventListener("error", () => {
      // deno-lint-ignore no-console
      console.warn(
        `Terra's widget: ${link.href} did not load; the page's CSP must allow ` +
          `${src.origin} in style-src (and script-src, connect-src)`,
      );
    }, { once: true });
    (container ?? document.body).append(element);
    if (accent && CSS.supports("color", accent)) {
      // Text on the operator's colour: white or near-black, whichever reads (WCAG luminance).
      const probe = make("span", "");
      probe.style.color = accent;
      root.append(probe);
      const [r, g, b] = (getComputedStyle(probe).color.match(/[\d.]+/g) ?? []).map(Number);
      probe.remove();
      const linear = (c = 0) => (c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      const luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
      // Contrast with white (1.05 / (L + 0.05)) against black ((L + 0.05) / 0.05): the larger.
      root.style.setProperty("--brand-text", luminance > 0.179 ? "#111111" : "#ffffff");
    }
    sync();
    if (inline || remembered.open || data.open === "true") show(false);
    // The chat was opened in this tab before: connect in the background on this page too,
    // so an answer that arrives while the panel is closed shows the unread dot.
    else if (remembered.active) void load().catch(() => {});
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mount, { once: true });
  } else mount();
})();
