/** Every chaos scenario by name. */
import { badInputScenario } from './bad-input.ts';
import { brokerScenario } from './broker.ts';
import { killScenario } from './kill.ts';
import { rebalanceScenario } from './rebalance.ts';
import type { Scenario } from './scenario.ts';
import { stateLossScenario } from './state-loss.ts';
import { zombieScenario } from './zombie.ts';

export const SCENARIOS: Record<string, Scenario> = Object.fromEntries(
  [killScenario, rebalanceScenario, zombieScenario, brokerScenario, stateLossScenario, badInputScenario].map((s) => [s.name, s]),
);

export type { Scenario };
