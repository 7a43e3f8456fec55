/** The stateless steps of a processor (`steps:`), as stages run in order before it. */
import type { StepDecl } from '../../topology/schema.ts';
import type { Stage } from '../spec.ts';
import { filterStage } from './filter.ts';
import { mapStage } from './map.ts';
import { routeStage } from './route.ts';

export function stepStages(steps: StepDecl[], processor: string): Stage[] {
  return steps.map((step, i) => {
    const where = `processor "${processor}" steps[${i}]`;
    if ('filter' in step) return filterStage(step.filter, `${where}.filter`);
    if ('map' in step) return mapStage(step.map, `${where}.map`);
    return routeStage(step.route, `${where}.route`);
  });
}

/** Topic aliases the steps forward to (they must be allowed outputs of the processor). */
export function stepOutputs(steps: StepDecl[]): string[] {
  return steps.flatMap((s) => ('route' in s ? [...Object.values(s.route.to), ...(s.route.default ? [s.route.default] : [])] : []));
}
