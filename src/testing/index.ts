/** foldstream/testing: run a topology with no broker. */
export { TopologyTestDriver, type DriverOptions, type OutputRecord, type PipeOptions } from './topology-test-driver.ts';
