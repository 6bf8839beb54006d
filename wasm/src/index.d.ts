// Type declarations of @hyperstreams/client (hand-written; checked by
// tests/node/types/usage.ts with `tsc --noEmit`).

/** What can be sent: bytes as they are, a string as UTF-8 text, anything else as JSON. */
export type Data = Uint8Array | ArrayBuffer | ArrayBufferView | string | JsonValue;
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Where the wasm file comes from, when the default (next to index.js) does not fit. */
export interface LoadOptions {
    /** Maps 'hyperstreams.wasm' to its URL (Emscripten's convention). */
    locateFile?: (file: string, defaultUrl: string) => string | URL;
    /** The URL of hyperstreams.wasm. */
    wasmUrl?: string | URL;
    /** The bytes of hyperstreams.wasm. */
    wasmBinary?: ArrayBuffer | Uint8Array;
}

export interface ReconnectOptions {
    /** First backoff bound; doubles per failed attempt (full jitter). Default 250. */
    baseMs?: number;
    /** Largest backoff bound. Default 15000. */
    maxMs?: number;
    /** Redirects followed in a row before backing off. Default 5. */
    maxRedirects?: number;
}

/** A WebSocket constructor: the browser's, or e.g. the `ws` package's in Node. */
export interface WebSocketConstructor {
    new (url: string): any;
}

export interface ConnectOptions extends LoadOptions {
    /** JWT presented in hello. */
    token?: string;
    /** Client name shown in the router's logs and admin view. */
    name?: string;
    /**
     * true (default): reconnect with jittered backoff; false: close on the first
     * lost connection (connect() then tries each router of the list once).
     */
    reconnect?: boolean | ReconnectOptions;
    /** Required where there is no global WebSocket (Node 20). */
    WebSocket?: WebSocketConstructor;
    /** From opening the socket to the router's welcome. Default 10000. */
    handshakeTimeoutMs?: number;
    /** Heartbeat interval when the router does not set one. Default 15000. */
    heartbeatMs?: number;
    /** Bytes of calls kept while disconnected. Default 1 MiB. */
    outboxLimitBytes?: number;
    /**
     * Listeners registered before the first attempt, as with client.on(): they
     * hear every attempt while connect() still waits, e.g. a failed one as a
     * 'state' event 'backoff' with its reason and retryInMs.
     */
    on?: { [K in keyof ClientEvents]?: (event: ClientEvents[K]) => void };
    /** Aborting it before the client is ready closes the client; connect() rejects with its reason. */
    signal?: AbortSignal;
}

export type ClientState =
    | 'idle' | 'connecting' | 'handshaking' | 'ready' | 'backoff' | 'awaiting_token' | 'closed' | 'failed';

/** Error code names (docs/PROTOCOL.md); other strings may appear with newer routers. */
export type ErrorCode =
    | 'truncated' | 'length_out_of_bounds' | 'frame_too_large' | 'unknown_kind' | 'unsupported_version'
    | 'trailing_bytes' | 'malformed_body' | 'invalid_name' | 'empty_batch' | 'name_too_long'
    | 'unexpected_frame' | 'handshake_timeout' | 'heartbeat_timeout' | 'version_mismatch' | 'duplicate_id'
    | 'protocol_violation' | 'no_such_service' | 'no_instance_available' | 'deadline_exceeded'
    | 'no_such_address' | 'backend_gone' | 'cancelled' | 'no_such_stream' | 'history_gone' | 'slow_consumer'
    | 'going_away' | 'not_subscribed' | 'handler_failed' | 'cluster_unavailable' | 'cluster_outcome_unknown'
    | 'key_reused' | 'not_enabled' | 'unauthorized' | 'token_expired' | 'forbidden'
    | 'origin_not_allowed' | 'too_many_subscriptions' | 'too_many_pending_requests' | 'rate_limited'
    | 'too_many_connections' | 'outbox_full' | 'too_many_services' | 'payload_too_large' | 'invalid_argument' | 'not_connected' | 'closed' | 'wrong_role'
    | 'already_subscribed' | 'too_many_redirects' | 'connection_lost'
    | 'connection_refused' | 'upgrade_refused' | 'transport_handshake_failed' | 'connection_failed'
    | (string & {});

export type Operation =
    | 'connection' | 'subscribe' | 'unsubscribe' | 'publish' | 'request' | 'stream' | 'direct' | 'broadcast'
    | 'register_service' | 'unregister_service' | 'discover' | 'token_refresh';

export class HyperStreamsError extends Error {
    readonly name: 'HyperStreamsError';
    /** The code's name, e.g. 'deadline_exceeded'. */
    readonly code: ErrorCode;
    /** The code's number on the wire. */
    readonly codeNumber: number;
    /** What failed. */
    readonly operation: Operation;
}

/** Received bytes, with their text and JSON decoded on first use. */
export class Payload {
    readonly bytes: Uint8Array;
    /** The sender marked the payload as JSON. */
    readonly isJson: boolean;
    /** The bytes as UTF-8 text. */
    readonly text: string;
    /** The text parsed as JSON (throws SyntaxError when it is not JSON). */
    readonly json: any;
}

/** A message delivered to a subscription. */
export class Message extends Payload {
    readonly channel: string;
    readonly epoch: number;
    /** Sequence number in the channel (exact up to 2^53). */
    readonly seq: number;
    /** Delivered from the channel's history after a reconnect, not live. */
    readonly replayed: boolean;
    readonly subscription: Subscription;
}

/** A direct message or broadcast. */
export class DirectMessage extends Payload {
    /** The sender's address. */
    readonly from: string;
}

export class Subscription {
    readonly id: number;
    readonly pattern: string;
    /**
     * A subscription the router made ('subscribed' event): its messages.
     * Set it in the event's listener, before any of them arrives.
     */
    onmessage?: (message: Message) => void;
    /** Stops delivery at once; resolves when the router confirmed. */
    unsubscribe(): Promise<void>;
}

/** A server stream: iterate with for await; leaving the loop cancels it. */
export class Stream implements AsyncIterableIterator<Payload> {
    [Symbol.asyncIterator](): Stream;
    next(): Promise<IteratorResult<Payload, undefined>>;
    return(): Promise<IteratorResult<Payload, undefined>>;
    cancel(): Promise<IteratorResult<Payload, undefined>>;
}

export type SlowConsumerPolicy = 'default' | 'drop_oldest' | 'keep_latest' | 'disconnect';

export interface SubscribeOptions {
    /** What the router does when this connection cannot keep up. */
    policy?: SlowConsumerPolicy;
    /**
     * The last message you already have (e.g. `{ epoch, seq }` of a Message kept
     * from an earlier session): the router first replays what the channel's
     * history holds after it. Exact channels only.
     */
    since?: Position;
    /**
     * First the last message of every channel the pattern matches (`replayed`,
     * at its real position), then the live ones, with no gap or duplicate
     * between them: a dashboard's current state at once. Asked again on each
     * resubscribe after a reconnect. Needs a router namespace with
     * `"latest": true`; elsewhere the subscribe fails with `not_enabled`.
     */
    latest?: boolean;
    /**
     * Join and leave events ('join', 'leave') for this channel's other
     * members. Exact channels of a namespace with join_leave only (else the
     * subscribe fails with 'not_enabled').
     */
    joinLeave?: boolean;
}

export interface PublishOptions {
    /** Wait for the router to accept the message. */
    ack?: boolean;
}

export interface PublishWithOptions extends PublishOptions {
    /**
     * Idempotency key, 1 to 255 printable ASCII characters (empty: none): a
     * repeat within the router's window resolves with the first publication's
     * position and is not delivered again; another payload under it rejects
     * with `key_reused`. Other keys reject with `invalid_argument`.
     */
    key?: string;
    /**
     * Seconds after which the message is no longer replayed: a whole number
     * from 1 (0 and others reject with `invalid_argument`).
     */
    ttlS?: number;
}

export interface Position {
    epoch: number;
    seq: number;
}

export interface RequestOptions {
    /** Deadline; 0 or absent: the router's default. */
    timeoutMs?: number;
}

export interface StreamOptions extends RequestOptions {
    /** Items the backend may send ahead of the reader. Default 16. */
    credit?: number;
}

export interface MethodInfo {
    name: string;
    kind: 'unary' | 'stream';
}

export interface ServiceInfo {
    name: string;
    instances: number;
    methods: MethodInfo[];
}

export interface StateEvent {
    state: ClientState;
    previous: ClientState;
    /**
     * Why, when there is a reason: e.g. 'heartbeat_timeout'; for a failed
     * connection attempt 'connection_refused', 'upgrade_refused' (an HTTP
     * status instead of the WebSocket upgrade, e.g. a wrong path),
     * 'transport_handshake_failed' (not a WebSocket endpoint),
     * 'handshake_timeout' or 'connection_failed' (browsers never say more).
     */
    reason: ErrorCode | null;
    /** The platform's words about a failed attempt, e.g. 'HTTP 404 from host/path instead of a WebSocket upgrade'. */
    detail: string | null;
    /** 'backoff': milliseconds until the next attempt. */
    retryInMs: number | null;
    /**
     * The router's URL: of the attempt ('connecting', 'handshaking', 'ready';
     * 'awaiting_token' and 'failed': the one that refused) or of the next
     * attempt ('backoff'); null in 'idle' and 'closed'.
     */
    url: string | null;
}

export interface GapEvent {
    channel: string;
    epoch: number;
    /** First missed sequence number (or, after an epoch change, the first of the new epoch). */
    seq: number;
    /** Messages missed; null when unknown (epoch changed: the router restarted the channel). */
    count: number | null;
    epochChanged: boolean;
    subscription: Subscription | undefined;
}

/** A client subscribed to a channel by its exact name. */
export interface PresenceMember {
    /** Its address, for send(). */
    address: string;
    /** Its token's subject; '' without a token. */
    subject: string;
    /** Its client name. */
    name: string;
}

export interface PresenceList {
    /** How many members the channel has, on every router of a cluster. */
    count: number;
    /** The members; fewer than `count` only when they do not fit in one answer. */
    members: PresenceMember[];
}

export interface PresenceEvent extends PresenceMember {
    channel: string;
    subscription: Subscription | undefined;
}

export interface RedirectEvent {
    url: string;
    code: ErrorCode | null;
}

export interface UnsubscribedEvent {
    subscription: Subscription | undefined;
    /** Why: null when a backend asked, 'forbidden' when a token refresh withdrew it. */
    reason: ErrorCode | null;
}

export interface ClientEvents {
    state: StateEvent;
    gap: GapEvent;
    error: HyperStreamsError | Error;
    redirect: RedirectEvent;
    direct: DirectMessage;
    broadcast: DirectMessage;
    /** Another client subscribed to a channel you subscribed to with joinLeave. */
    join: PresenceEvent;
    /** It unsubscribed or disconnected. */
    leave: PresenceEvent;
    /**
     * The router subscribed this client (the token's channels, a backend);
     * set the Subscription's onmessage here. Kept across reconnects, as your own.
     */
    subscribed: Subscription;
    /** The router ended a subscription (a backend, a token refresh). */
    unsubscribed: UnsubscribedEvent;
}

/** Made by connect(). */
export class Client {
    private constructor();
    readonly state: ClientState;
    /** This connection's address, for send(); '' before the first welcome. */
    readonly sessionId: string;

    on<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): () => void;
    off<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): void;

    subscribe(pattern: string, handler: (message: Message) => void, options?: SubscribeOptions): Promise<Subscription>;
    publish(channel: string, data: Data, options: PublishWithOptions & { ack: true }): Promise<Position>;
    publish(channel: string, data: Data, options?: PublishWithOptions): Promise<Position | undefined>;
    send(address: string, data: Data, options?: PublishOptions): Promise<Position | undefined>;
    broadcast(data: Data, options?: PublishOptions): Promise<Position | undefined>;
    request(service: string, method: string, data: Data, options?: RequestOptions): Promise<Payload>;
    stream(service: string, method: string, data: Data, options?: StreamOptions): Stream;
    services(): Promise<ServiceInfo[]>;
    /** Who is subscribed to `channel` (a namespace with presence; rejects with 'not_enabled' elsewhere). */
    presence(channel: string): Promise<PresenceList>;
    refreshToken(token: string): Promise<void>;
    close(): Promise<void>;
}

/**
 * One router's WebSocket endpoint, or the endpoints of several routers of one
 * cluster: the first attempt goes to the first, every failed attempt or lost
 * connection moves on to the next (after a pause of at most
 * `reconnect.baseMs`), and the backoff comes between rounds of the list.
 */
export function connect(url: string | URL | ReadonlyArray<string | URL>, options?: ConnectOptions): Promise<Client>;
export function preload(options?: LoadOptions): Promise<void>;
