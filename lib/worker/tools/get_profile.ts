/** `get_profile`: the site owner's bio and projects from `content/profile.md`. */
import { join } from "node:path";
import { z } from "zod";
import { defineTool, ToolError } from "../tool_registry.ts";

export const getProfile = defineTool({
  name: "get_profile",
  description: "The site owner's profile: who they are, what they work on, their projects.",
  schema: z.object({}),
  activity: () => "Reading the profile…",
  async run(_args, { config }) {
    try {
      return { profile: await Deno.readTextFile(join(config.contentDir, "profile.md")) };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new ToolError("not_found", "No profile is cached yet");
      }
      throw error;
    }
  },
});
