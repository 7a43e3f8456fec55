/**
 * Progress of offline work as Prometheus metrics (docs/metrics.md#offline-commands): `foldstream rebuild
 * --metrics-port N` serves them at /metrics while it runs, so a rebuild run as a Kubernetes Job or under a
 * supervisor can be watched like the app (`foldstream_restore_*` show the app's own restores). Wraps a progress
 * factory (app/progress.ts): every phase sets its done and total gauges as it moves.
 */
import { Gauge, Registry } from 'prom-client';
import { serveMetrics } from '../http/metrics-server.ts';
import type { Progress, ProgressFactory } from './progress.ts';

export class ProgressMetrics {
  readonly registry = new Registry();
  private readonly done: Gauge<'operation' | 'phase' | 'unit'>;
  private readonly total: Gauge<'operation' | 'phase' | 'unit'>;

  constructor() {
    const registers = [this.registry];
    this.done = new Gauge({ name: 'foldstream_offline_progress_done', help: 'Work done so far in a phase of an offline command (rebuild)', labelNames: ['operation', 'phase', 'unit'], registers });
    this.total = new Gauge({ name: 'foldstream_offline_progress_total', help: 'Work there is in a phase of an offline command, when known', labelNames: ['operation', 'phase', 'unit'], registers });
  }

  /** `inner`, with each phase's progress also in the gauges, labelled with `operation` */
  reporter(operation: string, inner: ProgressFactory): ProgressFactory {
    return (phase, total, unit = 'records') => {
      const labels = { operation, phase, unit };
      const shown = inner(phase, total, unit);
      this.done.set(labels, 0);
      if (total !== undefined) this.total.set(labels, total);
      let done = 0;
      const p: Progress = {
        tick: (n) => {
          done += n;
          this.done.set(labels, done);
          shown.tick(n);
        },
        update: (d) => {
          done = d;
          this.done.set(labels, done);
          shown.update(d);
        },
        stop: () => shown.stop(),
      };
      return p;
    };
  }

  /** Serves /metrics on the port (0: any free one) until closed. */
  serve(port: number, host = '0.0.0.0'): Promise<{ port: number; close: () => Promise<void> }> {
    return serveMetrics(this.registry, port, host);
  }
}
