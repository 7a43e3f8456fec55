/**
 * Connects a kafkajs client on first use, once, for every caller at the same time — and again after a failed
 * attempt: a rejected connect kept as "the" connection would fail every later call even once the brokers are back
 * (a restore that first connected while a broker restarted would never succeed).
 */
export class LazyConnection {
  private pending: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly what: string,
    private readonly connectFn: () => Promise<void>,
    private readonly disconnectFn: () => Promise<void>,
  ) {}

  ensure(): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.what} is closed`));
    this.pending ??= this.connectFn().catch((e: unknown) => {
      this.pending = undefined;
      throw e;
    });
    return this.pending;
  }

  /** After close a call fails instead of reconnecting: a socket opened then would keep the process alive. */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.pending;
    this.pending = undefined;
    if (pending) await this.disconnectFn().catch(() => undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
