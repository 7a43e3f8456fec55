/** What processors wrote, per topic, in write order, with marks: "everything written after this point". */
import type { OutputRecord } from './dead-letters.ts';

export class OutputLog {
  private readonly byTopic = new Map<string, { seq: number; record: OutputRecord }[]>();
  private seq = 0;

  append(record: OutputRecord): void {
    const list = this.byTopic.get(record.topic) ?? [];
    list.push({ seq: this.seq++, record });
    this.byTopic.set(record.topic, list);
  }

  /** A point in the log: records appended from now on are `since` it. */
  mark(): number {
    return this.seq;
  }

  records(topic: string, since = 0): OutputRecord[] {
    return (this.byTopic.get(topic) ?? []).filter((w) => w.seq >= since).map((w) => w.record);
  }

  /** Records of several topics, merged in write order. */
  merged(topics: string[], since = 0): OutputRecord[] {
    return topics
      .flatMap((t) => (this.byTopic.get(t) ?? []).filter((w) => w.seq >= since))
      .sort((a, b) => a.seq - b.seq)
      .map((w) => w.record);
  }

  clear(topic: string): void {
    this.byTopic.delete(topic);
  }

  topics(): string[] {
    return [...this.byTopic.keys()];
  }
}
