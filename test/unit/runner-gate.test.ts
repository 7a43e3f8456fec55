// The processor runner's gate (src/runtime/gate.ts): task work shares it, a commit takes it alone, and a waiting commit
// goes before new task work, so a steady stream of batches cannot starve the commit.
import test from 'ava';
import { Gate } from '../../src/runtime/gate.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

test('a commit waits for the task work in progress, and new task work waits for the commit', async (t) => {
  const g = new Gate();
  const events: string[] = [];
  let endWork!: () => void;
  const work = g.shared(async () => {
    events.push('work start');
    await new Promise<void>((r) => (endWork = r));
    events.push('work end');
  });
  await tick();
  const commit = g.exclusive(async () => {
    events.push('commit');
  });
  await tick();
  const later = g.shared(async () => {
    events.push('later work');
  });
  await tick();
  t.deepEqual(events, ['work start'], 'neither the commit nor the later work ran while the first work was in progress');
  endWork();
  await Promise.all([work, commit, later]);
  t.deepEqual(events, ['work start', 'work end', 'commit', 'later work']);
});

test('task work that lets a commit run in its middle (releaseShared, exclusive, acquireShared) does not deadlock with other work', async (t) => {
  const g = new Gate();
  const events: string[] = [];
  const a = g.shared(async () => {
    events.push('a1');
    g.releaseShared();
    await g.exclusive(async () => {
      events.push('commit');
    });
    await g.acquireShared();
    events.push('a2');
  });
  const b = g.shared(async () => {
    await tick();
    events.push('b');
  });
  await Promise.all([a, b]);
  t.deepEqual(events, ['a1', 'b', 'commit', 'a2']);
});
