// The live alarm list, newest first, capped so that a noisy line cannot grow
// the page without bound. Alarms are the simulator's:
// {"id","line","machine","kind","severity","message","temperature","ts"}.
import { formatClock, formatDecimal } from './format.js';

const MAX_ALARMS = 100;

export class AlarmFeed {
  constructor(list, { empty, status }) {
    this.list = list;
    this.emptyNote = empty;
    this.statusText = status;
    this.received = 0;
  }

  setStatus(text, tone) {
    this.statusText.textContent = text;
    this.statusText.dataset.tone = tone;
  }

  add(alarm) {
    const severity = alarm.severity;
    const item = document.createElement('li');
    item.className = `alarm alarm-${severityTone(severity)}`;
    item.dataset.testid = 'alarm-item';

    const time = document.createElement('time');
    const when = new Date(alarm.ts);
    time.dateTime = when.toISOString();
    time.textContent = formatClock(when);

    const badge = document.createElement('span');
    badge.className = 'alarm-severity';
    badge.textContent = severity;

    const where = document.createElement('span');
    where.className = 'alarm-where';
    where.textContent = `${alarm.line} · ${alarm.machine}`;

    const text = document.createElement('p');
    text.className = 'alarm-text';
    text.textContent = Number.isFinite(alarm.temperature)
      ? `${alarm.message} (${formatDecimal(alarm.temperature)} °C)`
      : alarm.message;

    const head = document.createElement('div');
    head.className = 'alarm-head';
    head.append(badge, where, time);
    item.append(head, text);
    this.list.prepend(item);
    while (this.list.childElementCount > MAX_ALARMS) this.list.lastElementChild.remove();
    this.received += 1;
    this.list.dataset.received = String(this.received);
    this.emptyNote.hidden = true;
  }
}

function severityTone(severity) {
  return severity === 'critical' ? 'bad' : 'warn';
}
