/**
 * `route: { by, to, default, continue }`: forwards each record (same key, value and headers) to the topic its routing
 * key maps to, inside the transaction; the processor sees it only with `continue: true`.
 */
import { compileExpression } from '../expressions.ts';
import type { Stage } from '../spec.ts';

export interface RouteDecl {
  by: string;
  to: Record<string, string>;
  default?: string | undefined;
  continue: boolean;
}

export function routeStage(route: RouteDecl, where: string): Stage {
  const by = compileExpression(route.by, `${where}.by`);
  return async (record, ctx) => {
    const key = await by.evaluate(record.value);
    const routingKey = typeof key === 'string' ? key : key === undefined || key === null ? undefined : JSON.stringify(key);
    const target = (routingKey !== undefined ? route.to[routingKey] : undefined) ?? route.default;
    if (target !== undefined) {
      ctx.forward(target, record.key, record.value, { headers: record.headers });
      return route.continue ? { record } : { drop: true, reason: 'routed' };
    }
    return route.continue ? { record } : { drop: true, reason: 'unrouted' };
  };
}
