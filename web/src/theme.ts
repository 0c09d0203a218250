/**
 * Light or dark: follows the system until the visitor picks one, and remembers the pick.
 * The button cycles system → light → dark.
 */
const KEY = "terrarium.theme";
const MODES = ["system", "light", "dark"] as const;
type Mode = typeof MODES[number];

function apply(mode: Mode, button: HTMLButtonElement): void {
  if (mode === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = mode;
  button.setAttribute("aria-label", `Theme: ${mode}. Change theme`);
  button.title = `Theme: ${mode}`;
}

export function themeToggle(button: HTMLButtonElement): void {
  const stored = localStorage.getItem(KEY);
  let mode: Mode = MODES.includes(stored as Mode) ? stored as Mode : "system";
  apply(mode, button);
  button.addEventListener("click", () => {
    mode = MODES[(MODES.indexOf(mode) + 1) % MODES.length]!;
    localStorage.setItem(KEY, mode);
    apply(mode, button);
  });
}
