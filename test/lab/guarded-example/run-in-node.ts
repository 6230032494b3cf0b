/**
 * Runs the gatekeeper example step with the real engine, inside the lab node
 * (bundled into one file by the lab test and started there with node):
 *
 *   node gatekeeper-run.mjs USERS SECONDS MODE
 *
 * MODE 'headless': nobody confirms (as `apply --yes`); 'await-proof': the
 * operator waits for a proof of access (here: `pve-baseline confirm` from a
 * new SSH session) until the deadline. Prints one JSON object: the results
 * and what the journal holds of the step.
 */
import { Journal, stateDir } from '../../../src/engine/journal.ts';
import { acquireLock } from '../../../src/engine/lock.ts';
import { Runner } from '../../../src/engine/runner.ts';
import type { AccessDecision, Operator, RunnerEvent } from '../../../src/engine/events.ts';
import { detectNode } from '../../../src/system/detect.ts';
import { LocalExec } from '../../../src/system/exec.ts';
import { BackupStore, LocalFiles } from '../../../src/system/files.ts';
import { gatekeeperStep } from './gatekeeper-step.ts';

const [users = '', seconds = '5', mode = 'headless'] = process.argv.slice(2);

const operator: Operator = {
  answer: async (request) => {
    throw new Error(`unexpected question ${request.stepId}.${request.question.id}`);
  },
  review: async () => 'apply',
  ...(mode === 'await-proof'
    ? {
        confirmAccess: async (request): Promise<AccessDecision> => {
          const proof = await request.proof;
          return proof ? { kind: 'proven', proof } : { kind: 'revert', reason: 'no proof of access before the deadline' };
        },
      }
    : {}),
};

const exec = new LocalExec();
const dir = stateDir();
const node = await detectNode(exec);
// As the CLI does: one writer of the journal at a time (confirm from another session then leaves it to us).
const lock = acquireLock(dir, node.bootId, 'gatekeeper example');
if (!lock.ok) throw new Error('another pve-baseline holds the lock');
const journal = Journal.open(dir, node.bootId);
const phases: string[] = [];
const runner = new Runner({
  steps: [gatekeeperStep({ seconds: Number(seconds) })],
  journal,
  backups: new BackupStore(`${dir}/backups`),
  operator,
  ctx: { exec, files: new LocalFiles(), node },
  presetAnswers: { gatekeeper: { users } },
  onEvent: (event: RunnerEvent) => {
    if (event.type === 'guard-phase') phases.push(event.phase);
  },
});
const results = await runner.run();
lock.release();
const record = journal.step('gatekeeper');
process.stdout.write(`${JSON.stringify({ results, phases, guard: record?.guard ?? null, proof: record?.proof ?? null, status: record?.status ?? null })}\n`);
