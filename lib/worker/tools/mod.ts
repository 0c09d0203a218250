/** The worker's tool set, in the order the system prompt lists them. */
import type { WorkerConfig } from "../config.ts";
import type { Tool } from "../tool_registry.ts";
import { liveFetchTools } from "./fetch_live_page.ts";
import { getProfile } from "./get_profile.ts";
import { githubTools } from "./github_tools.ts";
import { searchWeb } from "./search_web.ts";
import { siteIndexOf, siteTools } from "./site_tools.ts";
import { writeEnhancementRequest } from "./write_enhancement_request.ts";

/** Every tool the worker offers: the cache, then GitHub, then live fetches, then the web. */
export function allTools(config: WorkerConfig): Tool[] {
  const site = siteIndexOf(config.contentDir);
  return [
    ...siteTools(site),
    getProfile,
    ...githubTools(config.contentDir),
    ...liveFetchTools(site),
    searchWeb,
    writeEnhancementRequest(),
  ];
}
