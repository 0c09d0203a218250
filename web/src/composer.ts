/**
 * The message box: grows with its text, Enter sends and Shift+Enter starts a new line
 * (not while an input method is composing), and a counter appears near the length limit.
 */
export class Composer {
  maxLength = 4000;

  constructor(
    readonly form: HTMLFormElement,
    readonly input: HTMLTextAreaElement,
    readonly counter: HTMLElement,
    readonly send: HTMLButtonElement,
    readonly onSend: (text: string) => void,
  ) {
    input.addEventListener("input", () => this.#update());
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text || text.length > this.maxLength || this.send.disabled) return;
      this.onSend(text);
    });
    this.#update();
  }

  /** Empties the box after a message went out. */
  clear(): void {
    this.input.value = "";
    this.#update();
  }

  set busy(busy: boolean) {
    this.send.disabled = busy;
    this.send.textContent = busy ? "Sending…" : "Send";
  }

  #update(): void {
    const input = this.input;
    input.style.height = "auto";
    input.style.height = `${input.scrollHeight}px`;
    const length = input.value.trim().length;
    const near = length >= this.maxLength * 0.8;
    this.counter.textContent = near ? `${length} / ${this.maxLength}` : "";
    this.counter.classList.toggle("over", length > this.maxLength);
    input.setAttribute("aria-invalid", String(length > this.maxLength));
  }
}
