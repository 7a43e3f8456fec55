/** The assertions a chaos test makes about a run; the verifier's own tests use them too, to show they fail. */
import type { ExecutionContext } from 'ava';
import type { RunReport } from './report.ts';
import type { Verification } from './verify/verifier.ts';

/** Fails on any anomaly the verifier found: duplicate, loss, disorder, wrong value, store mismatch, DLQ difference, open transaction. */
export function assertVerificationClean(t: ExecutionContext, v: Verification | undefined): void {
  if (!v) {
    t.fail('the run was not verified');
    return;
  }
  t.deepEqual(v.problems, [], `the verifier found anomalies:\n${v.problems.join('\n')}`);
  t.is(v.transactions.open.length, 0, 'a transaction was left open');
  for (const [topic, f] of Object.entries(v.model.outputs)) {
    t.is(f.duplicates + f.losses + f.outOfOrder + f.wrongValues, 0, `output ${topic}: ${f.samples.join(' | ')}`);
  }
  for (const s of v.model.stores) t.is(s.mismatches, 0, `store ${s.store}: ${s.samples.join(' | ')}`);
  for (const d of v.model.dlq) t.is(d.missing + d.extra + d.duplicates + d.wrongReason, 0, `dead letters ${d.topic}: ${d.samples.join(' | ')}`);
}

/** A whole run: it finished, consumed everything, injected its faults, and the verifier found nothing. */
export function assertRunClean(t: ExecutionContext, r: RunReport): void {
  t.is(r.error, undefined, `the run failed: ${r.error}`);
  t.true(r.caughtUp, `the processors did not consume all input: ${JSON.stringify(r.lags.slice(0, 5))}`);
  t.true(r.generator.records > 0, 'the generator wrote nothing');
  assertVerificationClean(t, r.verification);
}
