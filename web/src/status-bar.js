// The header's live figures: connection state, message rate, gaps and the
// number of machines on screen.
import { formatInteger } from './format.js';

// The client's states (ClientState) as an operator reads them.
const CONNECTION = {
  idle: { text: 'connecting', tone: 'warn' },
  connecting: { text: 'connecting', tone: 'warn' },
  handshaking: { text: 'connecting', tone: 'warn' },
  ready: { text: 'connected', tone: 'ok' },
  backoff: { text: 'reconnecting', tone: 'warn' },
  awaiting_token: { text: 'token expired', tone: 'bad' },
  closed: { text: 'disconnected', tone: 'bad' },
  failed: { text: 'failed', tone: 'bad' },
};

export class StatusBar {
  constructor(root) {
    this.pill = root.querySelector('[data-testid="connection-state"]');
    this.rate = root.querySelector('[data-testid="messages-per-second"]');
    this.gapCount = root.querySelector('[data-testid="gap-count"]');
    this.machineCount = root.querySelector('[data-testid="machine-count"]');
    this.received = 0;
    this.gaps = 0;
    this.missed = 0;
    this.windowStart = performance.now();
    setInterval(() => this.tick(), 1000);
  }

  setConnection(state, reason) {
    const shown = CONNECTION[state] ?? { text: state, tone: 'warn' };
    this.pill.textContent = shown.text;
    this.pill.dataset.state = shown.text;
    this.pill.dataset.tone = shown.tone;
    this.pill.title = reason ? `${state}: ${reason}` : state;
  }

  countMessage() {
    this.received += 1;
  }

  // Every discontinuity counts once. A changed epoch (the router lost the
  // channel's history, e.g. it restarted) has no known number of messages.
  addGap({ count }) {
    this.gaps += 1;
    if (Number.isFinite(count)) this.missed += count;
    this.gapCount.textContent = formatInteger(this.gaps);
    this.gapCount.dataset.tone = 'warn';
    this.gapCount.title = `${formatInteger(this.missed)} messages known to be missed`;
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
