// The simulator's public surface, for tests, the demo and the benchmarks.
export { startImdsSimulator, type RunningSimulator, type SimulatorOptions, type SimStats } from './server.js';
export { gatewayOf, IMDS_ADDRESSES, loadScenario, parseScenario, secretValues, BUILTIN_SCENARIOS, type Scenario, type ScenarioNic, type ScenarioSecrets, type SimProvider } from './scenario.js';
export { parseFault, DEFAULT_HUGE_BODY_BYTES, type Fault, type FaultKind } from './faults.js';
export { BENCH_SIZES, generateScenario, simulatedSecrets } from './generate.js';
