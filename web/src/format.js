// Number and time formatting shared by the widgets: fixed decimals and
// grouping so that values keep their width while they tick.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en-US', {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});
const clock = new Intl.DateTimeFormat('en-GB', {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

export function formatInteger(value) {
  return Number.isFinite(value) ? integer.format(value) : '–';
}

export function formatDecimal(value) {
  return Number.isFinite(value) ? oneDecimal.format(value) : '–';
}

export function formatClock(date) {
  return clock.format(date);
}

// The short text of a failed call: the error code a user can look up, and
// the router's or the service's explanation. A HyperStreamsError's message
// is both already ("invalid_argument: speed must be within 0..3000 rpm").
export function describeError(error) {
  const code = error?.code ?? error?.name ?? 'error';
  const text = error?.message ?? String(error);
  if (!text || text === code || text.startsWith(`${code}: `)) return text || code;
  return `${code}: ${text}`;
}

// Why the connection is not up, from a 'state' event: the reason, the
// platform's words and when the next attempt comes.
export function describeConnection({ reason, detail, retryInMs }) {
  if (!reason) return '';
  const words = detail ? `${reason}: ${detail}` : reason;
  return Number.isFinite(retryInMs) ? `${words}; next attempt in ${(retryInMs / 1000).toFixed(1)} s` : words;
}
