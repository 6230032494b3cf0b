/** The revert the node owns: its paths and index, its program, the guard that arms it, and who may confirm it. */
export {
  assertRevertId,
  BOOT_UNIT,
  DEFAULT_REVERT_SECONDS,
  DEFAULT_UNIT_DIR,
  newRevertId,
  readIndex,
  RevertIndexError,
  revertIdOf,
  revertPaths,
  timerUnit,
  type ArmedWith,
  type IndexEntry,
  type RevertPaths,
  type RevertSession,
} from './paths.ts';
export { managesUnits, program, renderBootRunner, renderBootUnit, renderRevertData, renderRevertScript, shellQuote, type RenderOptions } from './script.ts';
export {
  activatedAt,
  armRevert,
  confirmedElsewhere,
  disarmRevert,
  markActivated,
  pendingReverts,
  revertNow,
  revertResult,
  type ArmOptions,
  type DisarmOptions,
  type DisarmResult,
  type PendingRevert,
  type PendingReverts,
  type RevertHandle,
  type RevertNowResult,
} from './guard.ts';
export { confirmFromSession, currentSession, REVERT_RUNNING, type ConfirmOutcome } from './session.ts';
