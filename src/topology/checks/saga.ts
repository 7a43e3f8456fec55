/** Cross-checks of a saga: its command and log topics, a module or a declarative flow, and where commands go. */
import type { PathSegment } from '../load.ts';
import type { SagaProcessorDecl, SagaStepDecl } from '../schema.ts';
import type { At, CheckContext } from './context.ts';

export function checkSaga(ctx: CheckContext, p: SagaProcessorDecl, at: At): void {
  ctx.moduleRef(at('module'), p.module);
  const commandTopics = Array.isArray(p.output.commands) ? p.output.commands : [p.output.commands];
  commandTopics.forEach((alias, j) => ctx.topicRef(Array.isArray(p.output.commands) ? at('output', 'commands', j) : at('output', 'commands'), alias));
  ctx.topicRef(at('output', 'log'), p.output.log);
  if (!p.module && !p.flow) ctx.problem(at(), 'a saga needs a `module:` or a declarative `flow:`');
  if (p.module && p.flow) ctx.problem(at('flow'), 'give either `module:` or `flow:`, not both');
  if (p.flow && !p.startOn) ctx.problem(at('flow'), 'a declarative `flow:` needs `startOn:`, the event type(s) that start an instance');
  if (p.module && p.startOn) ctx.problem(at('startOn'), '`startOn:` goes with a declarative `flow:`; a saga module decides itself when an instance starts');
  const sendTo = (path: PathSegment[], c: SagaStepDecl['send']) =>
    (Array.isArray(c) ? c.map((x, k) => [[...path, k], x] as const) : [[path, c] as const]).forEach(([where, x]) => {
      if (x.to === undefined) return;
      if (!commandTopics.includes(x.to)) {
        ctx.problem([...where, 'to'], `topic "${x.to}" is not one of the saga's output.commands (${commandTopics.join(', ')})`, 'add it to output.commands');
      }
    });
  const stepNames = new Map<string, number>();
  p.flow?.forEach((step, j) => {
    const first = stepNames.get(step.name);
    if (first !== undefined) ctx.problem(at('flow', j, 'name'), `step name "${step.name}" is already used by flow[${first}]`, 'give each step a unique name');
    else stepNames.set(step.name, j);
    sendTo(at('flow', j, 'send'), step.send);
    if (step.compensate) sendTo(at('flow', j, 'compensate'), step.compensate);
  });
  if (p.onFailure) sendTo(at('onFailure'), p.onFailure);
  if (p.module && p.onFailure) ctx.problem(at('onFailure'), '`onFailure:` goes with a declarative `flow:`; a saga module sends its own commands');
}
