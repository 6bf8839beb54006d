// Short-lived notices for the results of the controls, newest at the bottom.
const VISIBLE_MS = { ok: 4000, error: 8000 };
const MAX_TOASTS = 5;

export class Toasts {
  constructor(container) {
    this.container = container;
  }

  show(kind, title, detail) {
    const toast = document.createElement('div');
    toast.className = `toast toast-${kind}`;
    toast.dataset.testid = 'toast';
    toast.dataset.kind = kind;
    const heading = document.createElement('strong');
    heading.textContent = title;
    const body = document.createElement('span');
    body.textContent = detail;
    toast.append(heading, body);
    this.container.append(toast);
    while (this.container.childElementCount > MAX_TOASTS) this.container.firstElementChild.remove();
    setTimeout(() => toast.remove(), VISIBLE_MS[kind] ?? VISIBLE_MS.ok);
  }
}
