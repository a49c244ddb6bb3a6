// Types of heartbeat.js, the browser client of the tcc.heartbeat protocol.

export declare const SUBPROTOCOL_V2: "tcc.heartbeat.v2";
export declare const SUBPROTOCOL_V1: "tcc.heartbeat.v1";

/** Close codes of the protocol (heartbeat/doc.go). */
export declare const Close: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  MESSAGE_TOO_BIG: 1009;
  PROTOCOL_ERROR: 4000;
  UNSUPPORTED_VERSION: 4001;
  UNAUTHORIZED: 4002;
  EXPIRED: 4003;
  REPLACED: 4004;
  RELEASED: 4005;
  PING_TIMEOUT: 4006;
}>;

/** isFinal reports whether a close code forbids reconnecting (4000–4005). */
export declare function isFinal(code: number): boolean;

/** The wait before reconnect attempt n: uniformly random in [0, min(cap, base·2^n)) ms. */
export declare function backoffDelay(attempt: number, options?: { base?: number; cap?: number; random?: () => number }): number;

/** The activity interval actually used: at most half the idle threshold, at least 100 ms. */
export declare function activityIntervalFor(configured: number, idleThreshold: number | undefined): number;

/** Sends at most one frame per interval, on the leading and trailing edge. */
export declare class Coalescer {
  constructor(send: () => boolean, interval: number, timers?: { setTimeout?: typeof setTimeout; clearTimeout?: typeof clearTimeout });
  interval: number;
  readonly pending: boolean;
  /** Records activity; true if a frame went out now. */
  touch(): boolean;
  /** Sends pending activity at once. */
  flush(): boolean;
  cancel(): void;
}

export type State = "idle" | "connecting" | "connected" | "reconnecting" | "expired" | "closed" | "released";

export type StreamState = "connected" | "disconnected" | "reconnecting" | "lost";

export interface HeartbeatOptions {
  /** The heartbeat endpoint: ws(s)://, http(s):// or a path of this page's origin. */
  url: string;
  /** HeartbeatSession from the backend's Start (car.Lease). */
  session: string;
  /** HeartbeatToken from the backend's Start. Optional when a resume token of this session is stored. */
  token?: string;
  /** Where the latest resume token is kept (default sessionStorage; null: nowhere). */
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem"> | null;
  /** Storage key (default "tcc.heartbeat:" + session). */
  storageKey?: string;
  /** At most one activity frame per this many ms (default 5000; kept at most half the idle threshold). */
  activityInterval?: number;
  /** Full-jitter exponential backoff, ms (default base 500, cap 10000). */
  backoff?: { base?: number; cap?: number };
  /** Reconnect window before the first welcome states the server's (default 90000 ms). */
  grace?: number;
  /** An attempt not welcomed within this many ms is abandoned (default 10000). */
  connectTimeout?: number;
  /** Subprotocols offered (default v2 then v1). */
  protocols?: string[];
  // For tests and other environments:
  WebSocket?: typeof WebSocket;
  now?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (id: unknown) => void;
  random?: () => number;
  window?: EventTarget | null;
  document?: (EventTarget & { visibilityState: string }) | null;
  location?: { href: string };
}

export interface StateDetail {
  state: State;
  previous: State;
  /** Close code that caused the change, if any. */
  code?: number;
  reason?: string;
  /** Why a final state was reached: "replaced", "unauthorized", "expired", "grace window passed", "released", "closed by the page"… */
  why?: string;
  /** For "connected": whether the session had been connected before. */
  resumed?: boolean;
  version?: 1 | 2;
  /** For "connecting": which token the first hello uses ("stored" after a reload). */
  tokenSource?: "stored" | "join";
}

export interface WelcomeDetail {
  resumed: boolean;
  version: 1 | 2;
  pingInterval: number;
  grace: number;
  idleThreshold: number;
}

export interface EventMap {
  state: StateDetail;
  welcome: WelcomeDetail;
  queue: { position: number };
  /** serverSession: data.ServerSession (car.SessionManager's ready notice). */
  ready: { data: unknown; serverSession?: string };
  /** threshold: the idle threshold from the welcome, ms. */
  idle: { times: number; threshold?: number };
  released: { reason: string };
  custom: { name: string; data: unknown };
  /** Every server notice frame, as received. */
  notice: { type: string; [field: string]: unknown };
}

export declare class HeartbeatClient extends EventTarget {
  constructor(options: HeartbeatOptions);
  readonly session: string;
  readonly url: string;
  readonly state: State;
  /** The negotiated protocol version (0 before the first connection). */
  readonly version: 0 | 1 | 2;
  /** The latest welcome frame. */
  readonly welcome: (WelcomeDetail & { token: string; session: string }) | null;
  /** True in expired, closed and released. */
  readonly final: boolean;
  readonly closeCode: number;
  readonly closeReason: string;
  readonly why: string;
  /** Subscribes to an event's detail; returns an unsubscribe function. */
  on<K extends keyof EventMap>(type: K, fn: (detail: EventMap[K]) => void): () => void;
  start(): this;
  /** Makes a waiting reconnect attempt happen at once. */
  retryNow(): void;
  /** Reports user activity, coalesced. */
  touch(): void;
  /** Reports the media stream's state; false when the server speaks v1. */
  reportStream(state: StreamState, code?: number): boolean;
  /** Touches on keyboard, pointer, wheel, touch and gamepad input; returns the unbind function. */
  bindInput(target?: EventTarget, options?: { gamepadPoll?: number }): () => void;
  /** Ends the session from the page (1000); final. */
  close(): void;
}

/** Creates a HeartbeatClient and starts it. */
export declare function connect(options: HeartbeatOptions): HeartbeatClient;
