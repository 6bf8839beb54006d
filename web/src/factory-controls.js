// The simulator's methods, called through request/response. Every call ends
// in a visible toast: what the simulator answered, or the error code.
import { describeError } from './format.js';

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

function summarize(response) {
  const body = response?.json;
  if (body && typeof body === 'object') {
    const text = body.message ?? body.status ?? JSON.stringify(body);
    return text.length > 120 ? `${text.slice(0, 117)}…` : text;
  }
  return response?.text || 'done';
}
