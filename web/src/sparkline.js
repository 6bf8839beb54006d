// A small uPlot chart of one value over a sliding time window, sized to its
// container, with the window's range shown in `range`. Points arrive at
// telemetry rate; the chart redraws only when draw() is called, so that many
// tiles cost one paint per tick.
import uPlot from 'uplot';
import { formatDecimal } from './format.js';

const WINDOW_S = 60;
const HEIGHT = 64;

export class Sparkline {
  constructor(container, { color, label, range, unit }) {
    this.range = range;
    this.unit = unit;
    this.times = [];
    this.values = [];
    this.dirty = false;
    this.plot = new uPlot(
      {
        width: Math.max(container.clientWidth, 120),
        height: HEIGHT,
        pxAlign: false,
        cursor: { show: false },
        select: { show: false },
        legend: { show: false },
        scales: { x: { time: false } },
        axes: [{ show: false }, { show: false }],
        series: [
          {},
          {
            label,
            stroke: color,
            width: 2,
            fill: `${color}22`,
            points: { show: false },
          },
        ],
      },
      [this.times, this.values],
      container,
    );
    this.resizer = new ResizeObserver(() => {
      const width = container.clientWidth;
      if (width > 0 && width !== this.plot.width) this.plot.setSize({ width, height: HEIGHT });
    });
    this.resizer.observe(container);
  }

  push(timeMs, value) {
    if (!Number.isFinite(value)) return;
    this.times.push(timeMs / 1000);
    this.values.push(value);
    this.dirty = true;
  }

  // Slides the window to `nowMs` and repaints if anything changed.
  draw(nowMs) {
    const now = nowMs / 1000;
    let stale = 0;
    while (stale < this.times.length && this.times[stale] < now - WINDOW_S) stale += 1;
    if (stale > 0) {
      this.times.splice(0, stale);
      this.values.splice(0, stale);
    }
    if (!this.dirty && stale === 0) return;
    this.dirty = false;
    const { min, max } = extent(this.values);
    this.plot.batch(() => {
      this.plot.setData([this.times, this.values], false);
      this.plot.setScale('x', { min: now - WINDOW_S, max: now });
      this.plot.setScale('y', padded(min, max));
    });
    this.range.textContent =
      this.values.length === 0 ? '' : `${formatDecimal(min)}–${formatDecimal(max)} ${this.unit}`;
  }
}

function extent(values) {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

// Some headroom above and below, and never a flat line collapsed to nothing.
function padded(min, max) {
  if (!Number.isFinite(min)) return { min: 0, max: 1 };
  const pad = Math.max((max - min) * 0.15, Math.abs(max) * 0.02, 0.5);
  return { min: min - pad, max: max + pad };
}
