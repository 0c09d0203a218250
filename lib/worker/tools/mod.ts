/** The worker's tool set, in the order the system prompt lists them. */
import type { Tool } from "../tool_registry.ts";
import { fetchLivePage } from "./fetch_live_page.ts";
import { getProfile } from "./get_profile.ts";

/** Every tool the worker offers the model. */
export function allTools(): Tool[] {
  return [getProfile, fetchLivePage];
}
