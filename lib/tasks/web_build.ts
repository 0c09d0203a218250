/**
 * `deno task web [--api-base=URL] [--out=DIR]`: builds the chat page from `web/` into a
 * plain static directory (`web/dist/` by default) that the relay serves and any static host
 * can serve. The script is bundled with `deno bundle` (marked and DOMPurify included), and
 * every asset name carries a hash of its content, so assets can be cached for a year while
 * `index.html` is revalidated. The page's Content-Security-Policy is written into the HTML,
 * allowing connections to the relay's origin only.
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { sha256Hex } from "../digest.ts";
import { pageCsp } from "../page_csp.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WEB = join(ROOT, "web");
export const DEFAULT_WEB_OUT = join(WEB, "dist");

export interface WebBuildOptions {
  /** Where the relay's API lives, e.g. "https://relay.example.com/terrarium/api"; "" means
   * the `api/` path beside the page (the relay serving its own page). */
  apiBase?: string;
  outDir?: string;
}

/** `name.ext` → `name.<hash>.ext`, the hash taken over `body`. */
function fingerprint(name: string, body: Uint8Array): string {
  const hash = sha256Hex(body).slice(0, 12);
  const dot = name.lastIndexOf(".");
  return `${name.slice(0, dot)}.${hash}${name.slice(dot)}`;
}

async function bundleScript(entry = "main.ts"): Promise<Uint8Array> {
  const out = join(WEB, `.bundle-${crypto.randomUUID()}.js`);
  try {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform=browser",
        "--minify",
        "--output",
        out,
        join(WEB, "src", entry),
      ],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`deno bundle failed:\n${new TextDecoder().decode(stderr)}`);
    }
    return await Deno.readFile(out);
  } finally {
    await Deno.remove(out).catch(() => {});
  }
}

/** Builds the page; returns the output directory. The old build is replaced in one step. */
export async function buildWeb(options: WebBuildOptions = {}): Promise<string> {
  const outDir = options.outDir ?? DEFAULT_WEB_OUT;
  const apiBase = options.apiBase ?? "";
  if (apiBase && !/^https?:\/\//.test(apiBase)) {
    throw new Error(`--api-base must be an http(s) URL, not "${apiBase}"`);
  }
  const assets: Record<string, Uint8Array> = {
    "app.js": await bundleScript(),
    "style.css": await Deno.readFile(join(WEB, "style.css")),
    "icon.svg": await Deno.readFile(join(WEB, "icon.svg")),
  };
  const names: Record<string, string> = {};
  for (const [name, body] of Object.entries(assets)) names[name] = fingerprint(name, body);
  const widget = await buildWidget(apiBase);

  const values: Record<string, string> = {
    ...names,
    csp: pageCsp(apiBase),
    "api-base": escapeAttribute(apiBase),
  };
  const template = await Deno.readTextFile(join(WEB, "index.html"));
  const html = template.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (placeholder, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`web/index.html has an unknown ${placeholder}`);
    return value;
  });

  // Write beside the target, then swap, so a serving relay never sees a half-built page.
  const staging = `${outDir}.tmp-${Date.now()}`;
  await Deno.mkdir(staging, { recursive: true });
  for (const [name, body] of Object.entries(assets)) {
    await Deno.writeFile(join(staging, names[name]!), body);
  }
  await Deno.writeTextFile(join(staging, "index.html"), html);
  for (const [name, body] of Object.entries(widget)) {
    await Deno.writeFile(join(staging, name), body);
  }
  const old = `${outDir}.old-${Date.now()}`;
  await Deno.rename(outDir, old).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.rename(staging, outDir);
  await Deno.remove(old, { recursive: true }).catch(() => {});
  return outDir;
}

/**
 * The widget (`widget.js`, see web/src/widget_loader.ts): a small loader under its own,
 * revalidated name, which names its fingerprinted chat chunk and stylesheet. The stylesheet
 * is the page's, rewritten for a shadow root, then the widget's own rules.
 */
async function buildWidget(apiBase: string): Promise<Record<string, Uint8Array>> {
  const chat = await bundleScript("widget_chat.ts");
  const css = new TextEncoder().encode(
    shadowCss(await Deno.readTextFile(join(WEB, "style.css"))) + "\n" +
      await Deno.readTextFile(join(WEB, "widget.css")),
  );
  const chatName = fingerprint("widget-chat.js", chat);
  const cssName = fingerprint("widget.css", css);
  const loader = new TextDecoder().decode(await bundleScript("widget_loader.ts"));
  const placeholders = {
    __TERRARIUM_WIDGET_CHAT__: chatName,
    __TERRARIUM_WIDGET_STYLE__: cssName,
    // Inside a JS string literal: escaped as JSON escapes it.
    __TERRARIUM_WIDGET_API__: JSON.stringify(apiBase || "api/").slice(1, -1),
  };
  let filled = loader;
  for (const [placeholder, name] of Object.entries(placeholders)) {
    if (!filled.includes(placeholder)) throw new Error(`widget.js lost its ${placeholder}`);
    filled = filled.replaceAll(placeholder, () => name);
  }
  return {
    "widget.js": new TextEncoder().encode(filled),
    [chatName]: chat,
    [cssName]: css,
  };
}

/**
 * The page's stylesheet for the widget's shadow root: `:root` (which matches nothing there)
 * becomes the widget's `.terrarium-widget` wrapper, and rem becomes px, because rem follows the host
 * page's root font size (a host with `html { font-size: 40px }` would blow the chat up).
 */
export function shadowCss(css: string): string {
  return css
    .replace(/:root/g, ".terrarium-widget")
    .replace(/(\d*\.?\d+)rem\b/g, (_, n: string) => `${Math.round(Number(n) * 16 * 100) / 100}px`);
}

/** Gzipped size in bytes, as a browser downloads a compressed asset. */
export async function gzipSize(body: Uint8Array<ArrayBuffer>): Promise<number> {
  const stream = new Blob([body]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

/** "name  12.3 KB (4.1 KB gzipped)" for each script and stylesheet built into `outDir`. */
export async function webSizes(outDir: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const entry of Deno.readDir(outDir)) {
    if (!/\.(js|css)$/.test(entry.name)) continue;
    const body = await Deno.readFile(join(outDir, entry.name));
    const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
    lines.push(`${entry.name}  ${kb(body.byteLength)} (${kb(await gzipSize(body))} gzipped)`);
  }
  return lines.sort();
}

function escapeAttribute(value: string): string {
  return value.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;");
}

if (import.meta.main) {
  const option = (name: string) =>
    Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  try {
    const out = await buildWeb({ apiBase: option("api-base"), outDir: option("out") });
    // deno-lint-ignore no-console
    console.log(`web: page and widget built in ${out}`);
    // deno-lint-ignore no-console
    for (const line of await webSizes(out)) console.log(`web:   ${line}`);
  } catch (error) {
    // deno-lint-ignore no-console
    console.error(`web: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}
