/**
 * Keeps the conversation pinned to its newest message while the visitor is at the bottom;
 * once they scroll up to read, new content no longer moves the page and a "new messages"
 * badge offers the way back down.
 */
const NEAR_BOTTOM_PX = 48;

export class ScrollPin {
  #pinned = true;

  constructor(readonly scroller: HTMLElement, readonly badge: HTMLButtonElement) {
    scroller.addEventListener("scroll", () => {
      this.#pinned = this.#atBottom();
      if (this.#pinned) badge.hidden = true;
    }, { passive: true });
    badge.addEventListener("click", () => this.toBottom());
  }

  /** Content changed: follow it if pinned, otherwise say there is more below. */
  contentChanged(): void {
    if (this.#pinned) this.scroller.scrollTop = this.scroller.scrollHeight;
    else this.badge.hidden = false;
  }

  toBottom(): void {
    this.#pinned = true;
    this.badge.hidden = true;
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  #atBottom(): boolean {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= NEAR_BOTTOM_PX;
  }
}
