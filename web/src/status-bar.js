// The header's live figures: connection state, message rate, gaps and the
// number of machines on screen.
import { formatInteger } from './format.js';

const PILL_TONES = {
  connected: 'ok',
  open: 'ok',
  connecting: 'warn',
  reconnecting: 'warn',
  disconnected: 'bad',
  closed: 'bad',
};

export class StatusBar {
  constructor(root) {
    this.pill = root.querySelector('[data-testid="connection-state"]');
    this.rate = root.querySelector('[data-testid="messages-per-second"]');
    this.gapCount = root.querySelector('[data-testid="gap-count"]');
    this.machineCount = root.querySelector('[data-testid="machine-count"]');
    this.received = 0;
    this.gaps = 0;
    this.windowStart = performance.now();
    setInterval(() => this.tick(), 1000);
  }

  setConnection(state) {
    this.pill.textContent = state;
    this.pill.dataset.state = state;
    this.pill.dataset.tone = PILL_TONES[state] ?? 'warn';
  }

  countMessage() {
    this.received += 1;
  }

  addGap(missed) {
    this.gaps += missed;
    this.gapCount.textContent = formatInteger(this.gaps);
    this.gapCount.dataset.tone = 'warn';
  }

  setMachines(count) {
    this.machineCount.textContent = formatInteger(count);
  }

  tick() {
    const now = performance.now();
    const perSecond = (this.received * 1000) / (now - this.windowStart);
    this.rate.textContent = formatInteger(perSecond);
    this.received = 0;
    this.windowStart = now;
  }
}
