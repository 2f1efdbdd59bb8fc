// The JSON API as the pages use it: one request function, errors turned into human sentences,
// and the types of what the API returns.

import { hasMessage, t } from './i18n';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(hasMessage(`error.${code}`) ? t(`error.${code}` as never) : t('error.generic'));
  }
}

/** A sentence to show for any failure (never raw JSON). */
export function humanError(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof TypeError) return t('error.network');
  return t('error.generic');
}

export async function request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const init: RequestInit = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
  }
  const response = await fetch(`/api/v1${path}`, init);
  if (response.status === 204) return undefined as T;
  let data: unknown = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): reported by status below.
  }
  if (!response.ok) {
    const code = (data as { error?: { code?: string } } | null)?.error?.code;
    throw new ApiError(response.status, typeof code === 'string' ? code : statusCode(response.status));
  }
  return data as T;
}

function statusCode(status: number): string {
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status === 503) return 'busy';
  return 'generic';
}

export const get = <T>(path: string) => request<T>('GET', path);
export const post = <T>(path: string, body?: unknown, headers?: Record<string, string>) => request<T>('POST', path, body, headers);
export const patch = <T>(path: string, body: unknown) => request<T>('PATCH', path, body);
export const put = <T>(path: string, body: unknown) => request<T>('PUT', path, body);
export const del = <T>(path: string) => request<T>('DELETE', path);

export interface List<T> {
  items: T[];
  next_offset?: number | null;
}

export type Role = 'viewer' | 'host' | 'admin';

export interface User {
  id: number;
  email: string;
  display_name: string;
  role: Role;
  created_at: string;
}

export interface Image {
  id: number;
  url: string;
  content_type: string;
}

export interface Product {
  id: number;
  name: string;
  brand: string;
  category: string;
  description: string;
  price_minor: number;
  currency: string;
  price_display: string;
  stock: number;
  status: 'active' | 'draft' | 'archived';
  images: Image[];
}

export interface StreamHealth {
  video_codec: string | null;
  audio_codec: string | null;
  width: number | null;
  height: number | null;
  fps: number;
  bitrate_bps: number;
  keyframe_interval_ms: number | null;
  ms_since_last_frame: number;
  started_at: string;
}

export interface RungHealth {
  name: string;
  width: number;
  height: number;
  target_bitrate_bps: number;
  fps: number;
  bitrate_bps: number;
  encoder_lag_ms: number;
  dropped_parts: number;
}

/** Why a standard channel's live plays the source only. */
export type LadderFallback =
  | { code: 'no_encoder'; detail: string }
  | { code: 'no_slot' }
  | { code: 'no_free_node' }
  | { code: 'nothing_below_source' }
  | { code: 'encoder_failed'; detail: string };

export interface LadderStatus {
  running: boolean;
  fallback: LadderFallback | null;
  health: {
    running: boolean;
    rungs: RungHealth[];
    skipped_source_frames: number;
    restarts: number;
    cpu_seconds: number;
    /** The server that makes the renditions, when it is not the one that takes the stream. */
    encoder_node: string | null;
  } | null;
}

export interface Channel {
  id: number;
  /** `standard`: the source and an adaptive ladder; `basic`: the source only. */
  type: 'basic' | 'standard';
  host_id: number;
  title: string;
  description: string;
  scheduled_at: string | null;
  status: 'live' | 'offline';
  viewers: number;
  chat_slow_mode_s: number;
  chat_banned_words?: string[] | null;
  thumbnail_url: string;
  playback_url: string;
  health?: StreamHealth | null;
  ladder?: LadderStatus | null;
  ingest_url?: string;
  /** What the live's screen shows now (from its newest changed thumbnail), most probable first. */
  labels?: Label[];
}

export interface Label {
  class: number;
  name: string;
  category?: string;
  confidence: number;
}

export interface ChannelWithKey extends Channel {
  stream_key: string;
  ingest_url: string;
}

export interface TimelineEntry {
  product_id: number;
  offset_ms: number;
  [key: string]: unknown;
}

export interface Replay {
  id: number;
  channel_id: number;
  title: string;
  playback_url: string;
  thumbnail_url: string;
  duration_ms?: number;
  started_at?: string;
  timeline?: TimelineEntry[];
  [key: string]: unknown;
}

export interface OrderItem {
  product_id: number;
  name: string;
  quantity: number;
  unit_price_minor: number;
}

export interface Order {
  id: number;
  status: string;
  items: OrderItem[];
  total_minor: number;
  currency: string;
  total_display: string;
  created_at: string;
}

export interface Lineup {
  product_ids: number[];
}

export interface Deal {
  id: number;
  channel_id: number;
  product_id: number;
  price_minor: number;
  currency: string;
  listed: number;
  sold: number;
  remaining: number;
  per_customer_limit: number;
  starts_at: string;
  ends_at: string;
  status: 'running' | 'ended';
}

/** A fresh key for `Idempotency-Key`, so a retried order is placed once. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}

export interface FeedItem {
  kind: 'channel' | 'replay' | 'product';
  id: number;
  /** Why it is here, in one line (English; the reason codes are not localised yet). */
  reason: string;
  channel?: Channel;
  replay?: Replay;
  product?: Product;
}

export interface Feed {
  personalised: boolean;
  trained_at: string | null;
  items: FeedItem[];
}
