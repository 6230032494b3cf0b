/**
 * A change that goes live the moment its file is written, under the lockout
 * protocol, on a real node: the gatekeeper example step (written only for
 * this test, see guarded-example/) and a daemon in the node that turns
 * /etc/gatekeeper/allow into sshd's AllowUsers as soon as the file changes.
 * Nothing in src/ or steps/ knows this step: the engine hosts it as it is.
 *
 *   refused before the write   a list without the operator's account never reaches the disk
 *   no confirmation            the change is enforced (bob is shut out), then the node reverts it by itself
 *   confirmed                  `pve-baseline confirm` from a new SSH session keeps it; the revert is disarmed
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installBundle, labOrSkip, sh } from './helpers.ts';
import { waitFor } from './sh.ts';
import type { Lab } from './lab.ts';
// @ts-expect-error: a plain .mjs build script, without type declarations
import { bundle } from '../../scripts/bundle.mjs';

const STATE = '/var/lib/pve-baseline-gatekeeper';
const ENTRY = '/root/gatekeeper-run.mjs';
const HERE = path.dirname(fileURLToPath(import.meta.url));

interface EntryOutput {
  results: { outcome: string; reason?: string }[];
  phases: string[];
  guard: { phase: string; revertId?: string; deadline?: number } | null;
  proof: { by: string; from?: string } | null;
  status: string | null;
}

function runEntry(lab: Lab, users: string, seconds: number, mode: 'headless' | 'await-proof'): Promise<EntryOutput> {
  return lab.exec(['env', `PVE_BASELINE_STATE_DIR=${STATE}`, 'node', ENTRY, users, String(seconds), mode], { timeoutMs: 120_000 }).then((r) => {
    assert.equal(r.exitCode, 0, `the example run failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as EntryOutput;
  });
}

/**
 * Whether `user` can log in over SSH from the workstation right now (a real
 * password login through PAM). Only an answer from sshd counts: a connection
 * refused while sshd re-executes after a reload is tried again.
 */
async function logsIn(lab: Lab, user: string, password: string): Promise<boolean> {
  let last = '';
  for (const started = Date.now(); Date.now() - started < 15_000; ) {
    try {
      const r = await lab.ssh({ user, password, timeoutMs: 10_000 }, 'true');
      return r.exitCode === 0;
    } catch (error) {
      last = (error as Error).message;
      if (/authentication methods failed/i.test(last)) return false;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`sshd never answered ${user}'s login: ${last}`);
}

const BOB = 'bob-lab-password-1';
const allowFile = (lab: Lab) => readFileSync(path.join(lab.rootDir, 'etc/gatekeeper/allow'), 'utf8');
const appliedCount = async (lab: Lab) => (await sh(lab, 'cat /run/gatekeeper.applied 2>/dev/null || true')).split('\n').filter(Boolean).length;

const lab = await labOrSkip();
if (lab) {
  test('setup: a fresh node, the bundle, the example step built for the node, the gatekeeper daemon', { timeout: 300_000 }, async () => {
    await lab.reset();
    await installBundle(lab);
    const out = await mkdtemp(path.join(os.tmpdir(), 'gatekeeper-'));
    try {
      await bundle({ entry: path.join(HERE, 'guarded-example/run-in-node.ts'), outfile: path.join(out, 'run.mjs'), version: 'test' });
      copyFileSync(path.join(out, 'run.mjs'), path.join(lab.rootDir, ENTRY.slice(1)));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    copyFileSync(path.join(HERE, 'guarded-example/install.sh'), path.join(lab.rootDir, 'root/gatekeeper-install.sh'));
    await sh(lab, 'sh /root/gatekeeper-install.sh');
    await waitFor('the daemon applied the first list', 10_000, async () => ((await appliedCount(lab)) > 0 ? true : undefined));
    assert.ok(await logsIn(lab, 'bob', BOB), 'bob logs in before anything changes');
  });

  test('refused before the write: a list without the operator never reaches the disk, and the daemon never sees it', { timeout: 120_000 }, async () => {
    const before = allowFile(lab);
    const applied = await appliedCount(lab);
    const out = await runEntry(lab, 'bob', 30, 'headless');
    assert.equal(out.results[0]!.outcome, 'failed');
    assert.match(out.results[0]!.reason!, /refused before activating: the allow list keeps root, the account this session uses \(listed: bob\)/);
    assert.deepEqual(out.phases, ['backed-up', 'armed', 'reverted'], 'checked before anything was written');
    assert.equal(allowFile(lab), before, 'the file is as it was');
    assert.equal(await appliedCount(lab), applied, 'the daemon applied nothing');
    assert.equal((await lab.exec(['sh', '-c', `ls ${STATE}/revert/pending`])).stdout.trim(), '', 'nothing left armed');
    assert.ok(await logsIn(lab, 'root', lab.rootPassword));
  });

  test('nobody confirms: the change is enforced at once, and the node reverts it by itself at the deadline', { timeout: 120_000 }, async () => {
    const before = allowFile(lab);
    const out = await runEntry(lab, 'root', 4, 'headless');
    assert.equal(out.results[0]!.outcome, 'awaiting-confirmation', out.results[0]!.reason);
    assert.deepEqual(out.phases, ['backed-up', 'armed', 'checked', 'written', 'active', 'proven'], 'on write: checked first, live when written');
    assert.equal(out.guard?.phase, 'proven', 'the journal holds the phase the run reached');
    await waitFor('live: bob is shut out once sshd has reloaded', 10_000, async () => ((await logsIn(lab, 'bob', BOB)) ? undefined : true), 200);
    assert.ok(await logsIn(lab, 'root', lab.rootPassword), 'the operator keeps access');
    const deadline = out.guard!.deadline!;
    await waitFor('the node put the list back', deadline - Date.now() + 15_000, () => (allowFile(lab) === before ? true : undefined), 50);
    process.stderr.write(`measured: gatekeeper list restored ${Date.now() - deadline} ms after the deadline\n`);
    await waitFor('bob logs in again', 15_000, async () => ((await logsIn(lab, 'bob', BOB)) ? true : undefined), 200);
    assert.match(await sh(lab, `cat ${STATE}/revert/${out.guard!.revertId}.result`), /^reverted at \S+ \(timer\)/);
  });

  test('confirmed from a new SSH session: the change stays, the revert is disarmed, and the journal says who', { timeout: 120_000 }, async () => {
    const journalFile = path.join(lab.rootDir, STATE.slice(1), 'journal.json');
    const earlier = JSON.parse(readFileSync(journalFile, 'utf8')).steps?.gatekeeper?.guard?.revertId;
    const running = runEntry(lab, 'root', 60, 'await-proof');
    await waitFor('the change is proven and awaits a person', 30_000, () => {
      try {
        const record = JSON.parse(readFileSync(journalFile, 'utf8')).steps?.gatekeeper;
        return record?.guard?.revertId !== earlier && record?.guard?.phase === 'proven' && record.status === 'applied' ? true : undefined;
      } catch {
        return undefined;
      }
    });
    await waitFor('live while it awaits confirmation: bob is shut out', 10_000, async () => ((await logsIn(lab, 'bob', BOB)) ? undefined : true), 200);
    const confirm = await lab.ssh({ user: 'root', password: lab.rootPassword }, `PVE_BASELINE_STATE_DIR=${STATE} pve-baseline confirm`);
    assert.equal(confirm.exitCode, 0, `${confirm.stdout}${confirm.stderr}`);
    const out = await running;
    assert.equal(out.results[0]!.outcome, 'verified', out.results[0]!.reason);
    assert.equal(out.phases.at(-1), 'kept');
    assert.equal(out.proof?.by, 'confirm');
    const id = out.guard!.revertId!;
    assert.notEqual((await lab.exec(['systemctl', 'is-active', `pve-baseline-revert-${id}.timer`])).stdout.trim(), 'active', 'the timer is gone: it cannot fire');
    assert.equal((await lab.exec(['sh', '-c', `ls ${STATE}/revert/pending`])).stdout.trim(), '', 'nothing pending');
    assert.ok(!(await logsIn(lab, 'bob', BOB)), 'kept');
    // Tidy: everyone back in.
    await sh(lab, "printf 'root\\nbob\\n' > /etc/gatekeeper/allow");
    await waitFor('bob logs in again', 15_000, async () => ((await logsIn(lab, 'bob', BOB)) ? true : undefined), 200);
  });
}
