/**
 * The worker's content dir, complete and the operator's own: the prompt and profile files
 * exist and no longer carry the template marker, the persona is not the repository's
 * sample (Terra would speak for "Morgan Example"), and `site/pages.json` lists pages that
 * are there.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CONTENT_TEMPLATES, TEMPLATE_MARKER } from "../refresh/templates.ts";
import { fail, ok, warn } from "./check.ts";

const SAMPLE_DIR = fileURLToPath(new URL("../../content", import.meta.url));
const FILES = Object.keys(CONTENT_TEMPLATES);

/** Checks the prompt, persona and profile files of `contentDir`. */
export async function checkContentFiles(contentDir: string) {
  const missing = FILES.filter((file) => !existsSync(join(contentDir, file)));
  if (missing.length) {
    return fail(
      `${contentDir} lacks ${missing.join(", ")}`,
      "run `deno task refresh-content` (it writes templates for missing files) and edit them",
    );
  }
  const templates: string[] = [];
  for (const file of FILES) {
    if ((await Deno.readTextFile(join(contentDir, file))).includes(TEMPLATE_MARKER)) {
      templates.push(file);
    }
  }
  if (templates.length) {
    return fail(
      `${templates.join(", ")} still the template`,
      `write your own words into ${join(contentDir, templates[0]!)} and delete its first line`,
    );
  }
  const isSampleDir = resolve(contentDir) === resolve(SAMPLE_DIR);
  const persona = await Deno.readTextFile(join(contentDir, "persona.md"));
  const samplePersona = await Deno.readTextFile(join(SAMPLE_DIR, "persona.md")).catch(() => "");
  if (persona.includes("Morgan Example") || persona === samplePersona) {
    const what = "persona.md is the sample's: Terra speaks for Morgan Example";
    return isSampleDir
      ? warn(what, "fine for the demo; point CONTENT_DIR at your own content for a real site")
      : fail(what, `rewrite ${join(contentDir, "persona.md")} (README: "Make Terra yours")`);
  }
  return ok(`${FILES.join(", ")} are there and your own`);
}

/** Checks that `site/pages.json` parses and every page it lists is there. */
export async function checkSitePages(contentDir: string) {
  const listing = join(contentDir, "site", "pages.json");
  let pages: { file?: unknown }[];
  try {
    pages = JSON.parse(await Deno.readTextFile(listing));
    if (!Array.isArray(pages)) throw new Error("not a JSON array");
  } catch (error) {
    return fail(
      `${listing}: ${(error as Error).message}`,
      "run `deno task refresh-content` with REFRESH_SITE_URL or REFRESH_WEB_ROOT",
    );
  }
  const absent = pages.map((p) => String(p.file ?? "")).filter((file) =>
    !file || !existsSync(join(contentDir, "site", file))
  );
  if (absent.length) {
    return fail(
      `${absent.length} of ${pages.length} listed pages are missing (${
        absent.slice(0, 3).join(", ")
      })`,
      "run `deno task refresh-content` again",
    );
  }
  return pages.length
    ? ok(`${pages.length} cached pages`)
    : warn("site/pages.json lists no pages", "run `deno task refresh-content` for your site");
}
