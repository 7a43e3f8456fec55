/** The workloads by name, and for each the verifier model that predicts its outputs. */
import type { PlantTargets } from '../plant.ts';
import type { RunOptions } from '../profiles.ts';
import type { ModelCheck } from '../verify/model.ts';
import { BankModel } from '../verify/model-bank.ts';
import { JoinsModel } from '../verify/model-joins.ts';
import { CounterModel } from '../verify/model-counter.ts';
import { OrdersModel } from '../verify/model-orders.ts';
import { SagaModel } from '../verify/model-saga.ts';
import { changelogName, dlqName } from '../verify/wire.ts';
import { bankTopics, bankWorkload } from './bank.ts';
import { counterTopics, counterWorkload } from './counter.ts';
import { joinsTopics, joinsWorkload } from './joins.ts';
import { ordersTopics, ordersWorkload } from './orders.ts';
import { sagaTopics, sagaWorkload } from './saga.ts';
import type { Workload } from './workload.ts';

export const WORKLOADS: Record<string, Workload> = { counter: counterWorkload, bank: bankWorkload, orders: ordersWorkload, saga: sagaWorkload, joins: joinsWorkload };

export function modelFor(workload: RunOptions['workload'], app: string, o: Pick<RunOptions, 'partitions' | 'maxRecordBytes'>): ModelCheck {
  switch (workload) {
    case 'counter': {
      const t = counterTopics(app);
      return new CounterModel({ app, input: t.input, output: t.output, partitions: o.partitions, maxRecordBytes: o.maxRecordBytes });
    }
    case 'bank':
      return new BankModel({ app, ...bankTopics(app), partitions: o.partitions, maxRecordBytes: o.maxRecordBytes });
    case 'orders':
      return new OrdersModel({ app, ...ordersTopics(app), partitions: o.partitions, maxRecordBytes: o.maxRecordBytes });
    case 'saga':
      return new SagaModel({ app, ...sagaTopics(app), partitions: o.partitions, maxRecordBytes: o.maxRecordBytes });
    case 'joins':
      return new JoinsModel({ app, ...joinsTopics(app), partitions: o.partitions, maxRecordBytes: o.maxRecordBytes });
  }
}

export function plantTargets(workload: RunOptions['workload'], app: string): PlantTargets {
  switch (workload) {
    case 'counter': {
      const t = counterTopics(app);
      return { input: t.input, output: t.output, changelog: changelogName(app, 'counter', 'counts'), dlq: dlqName(app, 'counter') };
    }
    case 'bank': {
      const t = bankTopics(app);
      return {
        input: t.commands,
        output: t.events,
        changelog: changelogName(app, 'accounts', 'state'),
        dlq: dlqName(app, 'accounts'),
        groupView: t.bands,
        groupChangelog: changelogName(app, 'balance-bands-group', 'groups'),
        groupCountField: 'accounts',
        chainView: t.tiers,
      };
    }
    case 'orders': {
      const t = ordersTopics(app);
      return {
        input: t.commands,
        output: t.events,
        changelog: changelogName(app, 'orders', 'state'),
        dlq: dlqName(app, 'orders'),
        groupView: t.sizes,
        groupChangelog: changelogName(app, 'order-sizes-group', 'groups'),
        groupCountField: 'orders',
      };
    }
    case 'saga': {
      const t = sagaTopics(app);
      return {
        input: t.orderCommands,
        // duplicate / loss: an event of the aggregates (a duplicated or lost event)
        output: t.events,
        // store: the saga instances' store (a wrong saga state)
        changelog: changelogName(app, 'order-fulfilment-instances', 'sagas'),
        dlq: dlqName(app, 'orders'),
        // command-duplicate: a command the saga sent, written again
        commands: t.paymentCommands,
      };
    }
    case 'joins': {
      const t = joinsTopics(app);
      // duplicate / loss: a join result; store: a window
      return { input: t.orders, output: t.paid, changelog: changelogName(app, 'spend', 'windows'), dlq: dlqName(app, 'spend') };
    }
  }
}
