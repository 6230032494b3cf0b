/**
 * The baseline, in the order the wizard walks it. Each step is one module;
 * adding a step means writing its file and listing it here.
 */
import type { AnyStep } from '../src/engine/step.ts';
import { sysctlStep } from './sysctl.ts';

export const CATALOGUE: AnyStep[] = [sysctlStep];
