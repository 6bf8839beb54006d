// The production lines and their machine tiles, created as machines become
// known (from the simulator's machine list or from their first telemetry).
import { MachineTile } from './machine-tile.js';

const RENDER_INTERVAL_MS = 250;

export class FactoryFloor {
  constructor(container, controls, { onCountChange }) {
    this.container = container;
    this.controls = controls;
    this.onCountChange = onCountChange;
    this.lines = new Map();
    this.tiles = new Map();
    setInterval(() => this.render(), RENDER_INTERVAL_MS);
  }

  // Telemetry as published on factory.<line>.<machine>.telemetry.
  receive(telemetry) {
    this.tile(telemetry).update(telemetry, Date.now());
  }

  tile({ line, machine }) {
    const key = `${line}.${machine}`;
    let tile = this.tiles.get(key);
    if (tile) return tile;
    tile = new MachineTile({ line, machine }, this.controls);
    this.tiles.set(key, tile);
    const grid = this.lineGrid(line);
    const before = [...grid.children].find((el) => naturalOrder(el.dataset.machine, key) > 0);
    tile.mount(grid, before ?? null);
    this.onCountChange(this.tiles.size);
    return tile;
  }

  // The tile grid of `line`. Lines and tiles are kept in natural order
  // (L2 before L10) whatever order they appear in.
  lineGrid(line) {
    let section = this.lines.get(line);
    if (!section) {
      this.container.querySelector('[data-testid="floor-empty"]')?.remove();
      section = document.createElement('section');
      section.className = 'line';
      section.dataset.testid = 'line';
      section.dataset.line = line;
      const heading = document.createElement('h2');
      heading.className = 'line-name';
      heading.textContent = `Line ${line}`;
      const grid = document.createElement('div');
      grid.className = 'tiles';
      section.append(heading, grid);
      const next = [...this.lines.keys()].sort(naturalOrder).find((other) => naturalOrder(other, line) > 0);
      this.container.insertBefore(section, next ? this.lines.get(next) : null);
      this.lines.set(line, section);
    }
    return section.querySelector('.tiles');
  }

  render() {
    const now = Date.now();
    for (const tile of this.tiles.values()) tile.render(now);
  }
}

const collator = new Intl.Collator('en', { numeric: true });
function naturalOrder(a, b) {
  return collator.compare(a, b);
}
