// Loaded by ava into every test worker (package.json "ava.require"). ava waits for a worker to exit on its own, so a
// test that leaves a socket open (a kafkajs client not disconnected after a failure) would hang `npm test` until
// CI's timeout. Once a worker's tests are done, this names what is still open and ends the worker.
import { registerCompletionHandler } from 'ava';

registerCompletionHandler(() => {
  const open = (process as unknown as { _getActiveHandles(): object[] })
    ._getActiveHandles()
    .filter((h) => h.constructor.name === 'Socket' && (h as { remotePort?: number }).remotePort !== undefined)
    .map((h) => `${(h as { remoteAddress?: string }).remoteAddress}:${(h as { remotePort?: number }).remotePort}`);
  if (open.length) process.stderr.write(`test worker ${process.pid}: ${open.length} connection(s) left open (${open.join(', ')}); exiting anyway\n`);
  process.exit();
});
