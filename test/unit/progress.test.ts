// Progress of long offline work (src/app/progress.ts): without a terminal, a line every N records and one at the end;
// on a terminal, a cli-progress bar; quiet, nothing.
import test from 'ava';
import { PassThrough } from 'node:stream';
import { offsetProgress, progressReporter, startProgress } from '../../src/app/progress.ts';

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return { stream, text: () => text };
}

test('without a terminal: a line each time another `every` records are done, and one at the end', (t) => {
  const s = sink();
  const p = startProgress('read events', 2500, { stream: s.stream, every: 1000 });
  for (let i = 0; i < 25; i++) p.tick(100);
  p.stop();
  t.deepEqual(s.text().trim().split('\n'), [
    'read events: 1000/2500 records (40 %)',
    'read events: 2000/2500 records (80 %)',
    'read events: 2500/2500 records (100 %)',
  ]);
});

test('an unknown total is a count; a unit of its own', (t) => {
  const s = sink();
  const p = startProgress('fold', undefined, { stream: s.stream, every: 2 }, 'aggregates');
  p.update(3);
  p.stop();
  t.deepEqual(s.text().trim().split('\n'), ['fold: 3 aggregates', 'fold: 3 aggregates']);
});

test('on a terminal: a bar with the count and the total', (t) => {
  const s = sink();
  const p = startProgress('read events', 10, { stream: s.stream, bar: true });
  p.tick(4);
  p.update(10);
  p.stop();
  t.regex(s.text(), /read events \[[^\]]+\] 100% 10\/10 records/);
});

test('quiet: nothing', (t) => {
  const s = sink();
  const p = progressReporter({ stream: s.stream, quiet: true })('x', 5);
  p.tick(5);
  p.stop();
  t.is(s.text(), '');
});

test('partitions read to their end show 100 % though transaction markers are offsets without records', async (t) => {
  const s = sink();
  const bar = offsetProgress(progressReporter({ stream: s.stream, every: 1_000_000 }), 'read t', new Map([[0, 0n], [1, 5n]]), new Map([[0, 4n], [1, 9n]]));
  // partition 0: records at 0 and 2, markers at 1 and 3; partition 1: records 5..7, a marker at 8
  await bar.partition(0, async (from, tick) => {
    t.is(from, 0n);
    tick([{ offset: '0' }, { offset: '2' }]);
    return 4n;
  });
  await bar.partition(1, async (from, tick) => {
    t.is(from, 5n);
    tick([{ offset: '5' }, { offset: '6' }, { offset: '7' }]);
    return 9n;
  });
  bar.stop();
  t.is(s.text().trim(), 'read t: 8/8 offsets (100 %)');
});

test('as metrics: each phase sets its done and total gauges, served at /metrics while the command runs', async (t) => {
  const { ProgressMetrics } = await import('../../src/app/progress-metrics.ts');
  const m = new ProgressMetrics();
  const s = sink();
  const progress = m.reporter('rebuild', progressReporter({ stream: s.stream, every: 1_000_000 }));
  const read = progress('read t-events', 40, 'offsets');
  read.tick(15);
  read.update(30);
  const served = await m.serve(0, '127.0.0.1');
  try {
    const body = await (await fetch(`http://127.0.0.1:${served.port}/metrics`)).text();
    t.regex(body, /^foldstream_offline_progress_done\{operation="rebuild",phase="read t-events",unit="offsets"\} 30$/m);
    t.regex(body, /^foldstream_offline_progress_total\{operation="rebuild",phase="read t-events",unit="offsets"\} 40$/m);
    t.is((await fetch(`http://127.0.0.1:${served.port}/other`)).status, 404);
  } finally {
    await served.close();
  }
  read.stop();
  t.is(s.text().trim(), 'read t-events: 30/40 offsets (75 %)', 'the display is shown as well');
});
