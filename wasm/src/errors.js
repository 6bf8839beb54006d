/**
 * Every failure the client reports: a refused call, an operation the router
 * answered with an error, a deadline, a lost connection.
 *   code:       the error code's name ('deadline_exceeded', 'forbidden', ...)
 *   codeNumber: its number on the wire (docs/PROTOCOL.md)
 *   operation:  what failed ('publish', 'request', 'connection', ...)
 */
export class HyperStreamsError extends Error {
    constructor(code, codeNumber, message, operation) {
        super(message ? `${code}: ${message}` : code);
        this.name = 'HyperStreamsError';
        this.code = code;
        this.codeNumber = codeNumber;
        this.operation = operation;
    }
}
