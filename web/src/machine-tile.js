// One machine: its state, current values, a temperature sparkline and the
// controls that call the simulator. Telemetry only marks the tile dirty;
// render() writes the DOM, once per tick of the floor.
import { Sparkline } from './sparkline.js';
import { formatDecimal, formatInteger } from './format.js';

// Without telemetry for this long the values on screen are not live.
const STALE_AFTER_MS = 3000;

export class MachineTile {
  constructor({ line, machine }, controls) {
    this.line = line;
    this.machine = machine;
    this.controls = controls;
    this.latest = null;
    this.lastSeen = 0;
    this.dirty = false;
    this.speedEdited = false;
    this.element = this.build();
    this.chart = null;
  }

  get key() {
    return `${this.line}.${this.machine}`;
  }

  build() {
    const tile = document.createElement('article');
    tile.className = 'tile';
    tile.dataset.testid = 'machine-tile';
    tile.dataset.machine = this.key;
    tile.dataset.state = 'unknown';
    tile.innerHTML = `
      <header class="tile-head">
        <h3 class="tile-name"></h3>
        <span class="badge" data-testid="machine-state">unknown</span>
      </header>
      <dl class="metrics">
        <div class="metric">
          <dt>Temp <span class="unit">°C</span></dt>
          <dd class="value" data-testid="machine-temperature">–</dd>
          <dd class="sub" data-testid="machine-temperature-note">&nbsp;</dd>
        </div>
        <div class="metric">
          <dt>Speed <span class="unit">rpm</span></dt>
          <dd class="value" data-testid="machine-speed">–</dd>
          <dd class="sub" data-testid="machine-target-speed">&nbsp;</dd>
        </div>
        <div class="metric">
          <dt>Parts</dt>
          <dd class="value" data-testid="machine-output">–</dd>
        </div>
      </dl>
      <figure class="spark">
        <div class="spark-plot" data-testid="machine-chart"></div>
        <figcaption><span>Temperature, last 60 s</span><span data-testid="machine-chart-range"></span></figcaption>
      </figure>
      <form class="controls" novalidate>
        <div class="control-buttons">
          <button type="button" class="btn btn-start" data-testid="machine-start">Start</button>
          <button type="button" class="btn btn-stop" data-testid="machine-stop">Stop</button>
        </div>
        <label class="speed-field">
          <span class="visually-hidden">Target speed</span>
          <input type="number" inputmode="numeric" min="0" step="10" placeholder="speed"
                 data-testid="machine-speed-input" />
        </label>
        <button type="submit" class="btn btn-primary" data-testid="machine-set-speed">Set speed</button>
      </form>`;
    tile.querySelector('.tile-name').textContent = this.machine;
    this.fields = {
      state: tile.querySelector('[data-testid="machine-state"]'),
      temperature: tile.querySelector('[data-testid="machine-temperature"]'),
      speed: tile.querySelector('[data-testid="machine-speed"]'),
      output: tile.querySelector('[data-testid="machine-output"]'),
      targetSpeed: tile.querySelector('[data-testid="machine-target-speed"]'),
      temperatureNote: tile.querySelector('[data-testid="machine-temperature-note"]'),
      speedInput: tile.querySelector('[data-testid="machine-speed-input"]'),
    };
    const form = tile.querySelector('form');
    tile.querySelector('.btn-start').addEventListener('click', (e) => this.run(e.currentTarget, 'start'));
    tile.querySelector('.btn-stop').addEventListener('click', (e) => this.run(e.currentTarget, 'stop'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const speed = Number(this.fields.speedInput.value);
      if (this.fields.speedInput.value === '' || !Number.isFinite(speed)) {
        this.fields.speedInput.focus();
        return;
      }
      this.run(e.submitter ?? form.querySelector('[type="submit"]'), 'setSpeed', speed);
    });
    this.fields.speedInput.addEventListener('input', () => {
      this.speedEdited = true;
    });
    return tile;
  }

  // The chart needs its container laid out to know its width.
  mount(grid, before) {
    grid.insertBefore(this.element, before);
    this.chart = new Sparkline(this.element.querySelector('.spark-plot'), {
      color: '#38bdf8',
      label: 'Temperature',
      unit: '°C',
      range: this.element.querySelector('[data-testid="machine-chart-range"]'),
    });
  }

  async run(button, action, ...args) {
    button.disabled = true;
    this.element.classList.add('busy');
    try {
      const ok = await this.controls[action](this.line, this.machine, ...args);
      if (ok && action === 'setSpeed') this.speedEdited = false;
    } finally {
      button.disabled = false;
      this.element.classList.remove('busy');
    }
  }

  update(telemetry, receivedAt) {
    this.latest = telemetry;
    this.lastSeen = receivedAt;
    this.chart?.push(receivedAt, telemetry.temperature);
    this.dirty = true;
  }

  render(now) {
    const stale = now - this.lastSeen > STALE_AFTER_MS;
    this.element.classList.toggle('stale', stale && this.latest !== null);
    this.chart?.draw(now);
    if (!this.dirty) return;
    this.dirty = false;
    const t = this.latest;
    const state = String(t.state ?? 'unknown');
    this.element.dataset.state = state;
    this.fields.state.textContent = state;
    this.fields.state.className = `badge badge-${badgeTone(state)}`;
    this.fields.temperature.textContent = formatDecimal(t.temperature);
    this.fields.temperatureNote.textContent = temperatureNote(t.temperature);
    this.fields.temperatureNote.dataset.tone = temperatureTone(t.temperature);
    this.fields.speed.textContent = formatInteger(t.speed);
    this.fields.targetSpeed.textContent = Number.isFinite(t.target_speed)
      ? `target ${formatInteger(t.target_speed)}`
      : '\u00a0';
    this.fields.output.textContent = formatInteger(t.output);
    const input = this.fields.speedInput;
    if (!this.speedEdited && document.activeElement !== input && Number.isFinite(t.target_speed)) {
      input.value = String(t.target_speed);
    }
  }
}

// The simulator warns at 85 °C and trips the machine at 95 °C.
const WARN_AT = 85;
const TRIP_AT = 95;

function temperatureTone(celsius) {
  if (celsius >= WARN_AT) return 'bad';
  if (celsius >= WARN_AT - 10) return 'warn';
  return 'ok';
}

function temperatureNote(celsius) {
  if (celsius >= WARN_AT) return `trips at ${TRIP_AT}`;
  if (celsius >= WARN_AT - 10) return `warns at ${WARN_AT}`;
  return '\u00a0';
}

function badgeTone(state) {
  if (state === 'running') return 'ok';
  if (state === 'fault') return 'bad';
  return 'idle';
}
