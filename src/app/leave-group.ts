/**
 * `foldstream leave-group`'s work: removes a stopped static member from every processor group of the app
 * (src/kafka/static-membership.ts removeStaticMember), so the remaining instances take its tasks now.
 */
import { createKafka } from '../kafka/client.ts';
import { removeStaticMember } from '../kafka/static-membership.ts';
import type { LoadedTopology } from '../topology/load.ts';
import { groupId, stagesOf } from '../topology/names.ts';

export interface LeaveOutcome {
  group: string;
  result: 'removed' | 'not_a_member';
}

export async function leaveGroups(loaded: LoadedTopology, instanceId: string, each?: (o: LeaveOutcome) => void): Promise<LeaveOutcome[]> {
  const t = loaded.topology;
  const kafka = createKafka(t, { baseDir: loaded.baseDir, clientIdSuffix: '-leave-group' });
  const out: LeaveOutcome[] = [];
  for (const p of t.processors) {
    for (const s of stagesOf(p)) {
      const group = groupId(t.app, s.name);
      const o = { group, result: await removeStaticMember(kafka, group, instanceId) };
      each?.(o);
      out.push(o);
    }
  }
  return out;
}
