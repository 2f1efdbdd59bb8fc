// A live room's WebSocket: frames in, chat and hearts out, reconnecting with backoff when the
// connection drops (a node restarting, a phone changing networks).

export interface PinnedProduct {
  id: number;
  name: string;
  price_minor: number;
  currency: string;
  image_url?: string | null;
}

export interface ChatFrame {
  type: 'chat';
  id: number;
  user: { id: number; name: string };
  text: string;
  ts: string;
}

export interface DealFrame {
  type: 'deal';
  id: number;
  product: PinnedProduct;
  price_minor: number;
  currency: string;
  listed: number;
  remaining: number;
  per_customer_limit: number;
  ends_at: string;
  ends_in_ms: number;
}

export type Frame =
  | ChatFrame
  | { type: 'chat_deleted'; id: number }
  | { type: 'viewers'; count: number }
  | { type: 'hearts'; count: number }
  | { type: 'pin'; product: PinnedProduct; pts: string }
  | DealFrame
  | { type: 'deal_stock'; id: number; remaining: number; sold: number }
  | { type: 'deal_ended'; id: number; sold: number }
  | { type: 'error'; code: string; message: string };

export type Status = 'connecting' | 'open' | 'reconnecting';

export class Room {
  private socket: WebSocket | null = null;
  private closed = false;
  private attempts = 0;
  private timer: number | undefined;

  constructor(
    private readonly channelId: number,
    private readonly onFrame: (frame: Frame) => void,
    private readonly onStatus: (status: Status) => void,
  ) {
    this.connect();
  }

  private connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/channels/${this.channelId}/ws`);
    this.socket = socket;
    this.onStatus(this.attempts === 0 ? 'connecting' : 'reconnecting');
    socket.onopen = () => {
      this.attempts = 0;
      this.onStatus('open');
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      let frame: Frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onFrame(frame);
    };
    socket.onclose = () => {
      if (this.closed) return;
      this.attempts += 1;
      this.onStatus('reconnecting');
      const delay = Math.min(10_000, 500 * 2 ** Math.min(this.attempts, 5)) * (0.5 + Math.random() / 2);
      this.timer = window.setTimeout(() => this.connect(), delay);
    };
  }

  /** Sends a client frame; false when the socket is not open. */
  send(frame: { type: 'chat'; text: string } | { type: 'heart' }): boolean {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  close() {
    this.closed = true;
    window.clearTimeout(this.timer);
    this.socket?.close();
  }
}
