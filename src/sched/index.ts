export { Scheduler } from './scheduler.js';
export type { ForkOptions, SchedulerOptions, SchedulerStats } from './scheduler.js';
export type { Path, PathState } from './path.js';
export type { StepPlan } from './step_plan.js';
