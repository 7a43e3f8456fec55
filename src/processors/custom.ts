/** `type: custom`: a module with process(record, ctx), and optionally init(ctx), punctuate(timestamp, ctx), close(). */
import type { CustomProcessorDecl } from '../topology/schema.ts';
import { loadModule, optionalFunction, requireFunction } from './module-loader.ts';
import type { CustomModule, Processor } from './types.ts';

export async function loadCustomModule(baseDir: string, decl: CustomProcessorDecl): Promise<CustomModule> {
  const what = `processor "${decl.name}"`;
  const mod = await loadModule(baseDir, decl.module, what);
  const m: CustomModule = { process: requireFunction(mod, 'process', what, decl.module) };
  const init = optionalFunction<NonNullable<CustomModule['init']>>(mod, 'init');
  const punctuate = optionalFunction<NonNullable<CustomModule['punctuate']>>(mod, 'punctuate');
  const close = optionalFunction<NonNullable<CustomModule['close']>>(mod, 'close');
  if (init) m.init = init;
  if (punctuate) m.punctuate = punctuate;
  if (close) m.close = close;
  if (decl.punctuate && !punctuate) {
    requireFunction(mod, 'punctuate', what, decl.module);
  }
  return m;
}

/** The module is shared by every task; per-task state belongs in stores or in closures created by init(). */
export function customProcessor(m: CustomModule): Processor {
  const p: Processor = { process: (record, ctx) => m.process(record, ctx) };
  if (m.init) p.init = (ctx) => m.init!(ctx);
  if (m.close) p.close = () => m.close!();
  return p;
}
