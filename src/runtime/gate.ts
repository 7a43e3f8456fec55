/**
 * A readers-writer gate for a processor runner (exactly-once v2): the work of its tasks (batches, punctuations) runs
 * shared, any number at once; the runner's commit or abort runs exclusive, when no task is in the middle of a
 * record. A waiting writer goes first: new shared work waits behind it, so a commit is not starved.
 */
export class Gate {
  private readers = 0;
  private writer = false;
  private writersWaiting = 0;
  private waiters: (() => void)[] = [];

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private wait(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }

  async acquireShared(): Promise<void> {
    while (this.writer || this.writersWaiting > 0) await this.wait();
    this.readers++;
  }

  releaseShared(): void {
    this.readers--;
    if (this.readers === 0) this.wake();
  }

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquireShared();
    try {
      return await fn();
    } finally {
      this.releaseShared();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.writersWaiting++;
    try {
      while (this.writer || this.readers > 0) await this.wait();
    } finally {
      this.writersWaiting--;
    }
    this.writer = true;
    try {
      return await fn();
    } finally {
      this.writer = false;
      this.wake();
    }
  }
}
