/**
 * Keeps the conversation pinned to its newest message while the visitor is at the bottom;
 * once they scroll up to read, new content no longer moves the page and a "new messages"
 * badge offers the way back down.
 *
 * Only the visitor unpins it. A scroll event is dispatched a frame after the scroll that
 * caused it, and by then more content (or a notice changing the scroller's height) may
 * have arrived: judged by position alone, the page's own follow-scroll looked like the
 * visitor scrolling away, and the next answer streamed below the fold (issue 16, on a
 * phone after an error notice). The page only ever scrolls down, and the browser only
 * clamps to the bottom; so only a move up that leaves the bottom unpins, and a change of
 * the scroller's size re-pins it when pinned.
 */
const NEAR_BOTTOM_PX = 48;

export class ScrollPin {
  #pinned = true;
  /** The scroll position last seen (by an event or set by the page). */
  #lastTop = 0;

  constructor(readonly scroller: HTMLElement, readonly badge: HTMLButtonElement) {
    scroller.addEventListener("scroll", () => {
      const top = scroller.scrollTop;
      if (this.#atBottom()) {
        this.#pinned = true;
        badge.hidden = true;
      } else if (top < this.#lastTop - 1) {
        this.#pinned = false;
      }
      this.#lastTop = top;
    }, { passive: true });
    badge.addEventListener("click", () => this.toBottom());
    // The composer growing, a notice appearing, the phone keyboard opening.
    new ResizeObserver(() => {
      if (this.#pinned) this.#follow();
    }).observe(scroller);
  }

  get pinned(): boolean {
    return this.#pinned;
  }

  /** Content changed: follow it if pinned, otherwise say there is more below. */
  contentChanged(): void {
    if (this.#pinned) this.#follow();
    else this.badge.hidden = false;
  }

  /** Back to the newest message, pinned again (the visitor sent, or asked for it). */
  toBottom(): void {
    this.#pinned = true;
    this.badge.hidden = true;
    this.#follow();
  }

  #follow(): void {
    const s = this.scroller;
    s.scrollTop = s.scrollHeight;
    this.#lastTop = s.scrollTop;
  }

  #atBottom(): boolean {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= NEAR_BOTTOM_PX;
  }
}
