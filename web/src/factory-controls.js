// The simulator's methods, called through request/response. Every call ends
// in a visible toast: what the simulator answered, or the error code.
import { describeError, formatInteger } from './format.js';

const SERVICE = 'factory';
const TIMEOUT_MS = 5000;

export class FactoryControls {
  constructor(client, toasts) {
    this.client = client;
    this.toasts = toasts;
  }

  start(line, machine) {
    return this.call('start', { line, machine }, `${line} · ${machine} start`);
  }

  stop(line, machine) {
    return this.call('stop', { line, machine }, `${line} · ${machine} stop`);
  }

  setSpeed(line, machine, speed) {
    return this.call('set_speed', { line, machine, speed }, `${line} · ${machine} speed ${speed}`);
  }

  // Resolves true when the simulator accepted the call.
  async call(method, args, title) {
    try {
      const response = await this.client.request(SERVICE, method, args, { timeoutMs: TIMEOUT_MS });
      this.toasts.show('ok', title, summarize(response));
      return true;
    } catch (error) {
      this.toasts.show('error', `${title} failed`, describeError(error));
      return false;
    }
  }
}

// The simulator answers a command with the machine's new view:
// {"line","machine","state","speed","target_speed"}.
function summarize(response) {
  const view = response.json;
  return `${view.state}, target ${formatInteger(view.target_speed)} rpm`;
}
