// Types of tcgsdk.js, the TCGSDK glue.

import type { EventMap as HeartbeatEventMap, HeartbeatClient, HeartbeatOptions, StreamState } from "./heartbeat.js";

/** The part of TCGSDK the glue uses. */
export interface TCGSDKLike {
  init(config: Record<string, unknown>): void;
  getClientSession(): string;
  start(serverSession: string): void;
  destroy?(params?: { message?: string; code?: number }): void;
  [method: string]: unknown;
}

/** car.Lease as the backend encodes it with encoding/json. */
export interface Lease {
  UserId?: string;
  HeartbeatSession: string;
  HeartbeatToken: string;
  ServerSession?: string;
  QueuePosition?: number;
  /** Optional: where the heartbeat is, if not options.heartbeatURL. */
  HeartbeatURL?: string;
  [field: string]: unknown;
}

export interface CAROptions {
  /** Default globalThis.TCGSDK. */
  TCGSDK?: TCGSDKLike;
  /** TCGSDK.init's config (mount…); its callbacks still run, after the glue's. */
  init?: Record<string, unknown>;
  /** The backend's start endpoint: POST {"ClientSession", ...startBody}, answers a Lease. */
  startURL?: string;
  startBody?: Record<string, unknown>;
  fetchInit?: RequestInit;
  /** Instead of startURL: get the lease yourself. */
  start?: (clientSession: string) => Promise<Lease>;
  /**
   * While queued: POST {"ClientSession" (fresh), ...startBody} here when the
   * user reaches the head of the queue, and every refreshEvery ms (default
   * 60000) until ready; the backend calls RefreshClientSession. 409 (not
   * queued any more) is ignored.
   */
  refreshURL?: string;
  refreshEvery?: number;
  /** The heartbeat endpoint (default "/heartbeat"). */
  heartbeatURL?: string;
  /** More HeartbeatClient options (url, session and token come from the lease). */
  heartbeat?: Partial<HeartbeatOptions>;
  /** Touch on page input (default true), on inputTarget (default window). */
  bindInput?: boolean;
  inputTarget?: EventTarget;
  /** TCGSDK.destroy() when the session ends (default true). */
  destroyOnEnd?: boolean;
}

export interface StreamDetail {
  state: StreamState;
  code: number;
  callback: "onConnectSuccess" | "onDisconnect" | "onConnectFail";
}

export interface CAREventMap extends HeartbeatEventMap {
  lease: Lease;
  stream: StreamDetail;
  refresh: { clientSession: string };
  /** A "ready" notice with another ServerSession while this page's stream runs (a newer page of the user has it): not started. */
  ignored: { serverSession: string; stream: StreamDetail | null };
  error: { error: Error; during: "init" | "start" | "refresh" };
}

/** Maps a TCGSDK callback and code to the stream frame's state. */
export declare function streamReportFor(callback: string, code: number | undefined): { state: StreamState; code: number } | null;

export declare class CARSession extends EventTarget {
  constructor(options: CAROptions);
  readonly lease: Lease | null;
  readonly heartbeat: HeartbeatClient | null;
  /** The ServerSession TCGSDK.start was called with. */
  readonly serverSession: string;
  readonly stream: StreamDetail | null;
  on<K extends keyof CAREventMap>(type: K, fn: (detail: CAREventMap[K]) => void): () => void;
  begin(): this;
  touch(): void;
  close(): void;
}

/** Creates a CARSession and begins it: TCGSDK.init, start endpoint, heartbeat, TCGSDK.start. */
export declare function startCAR(options: CAROptions): CARSession;
