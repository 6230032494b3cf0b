/**
 * `pve-baseline postboot`: what the oneshot unit runs once after a reboot a
 * step asked for (src/engine/reboot.ts). It reads the journal's reboot
 * record, checks the node came back as expected (the kernel, Proxmox's
 * services), writes the result for the next run (postboot.json, 0600) and
 * for the next login (the message of the day), and disables itself. It
 * changes nothing else, and a boot that is not after the recorded one is
 * left alone (the unit ran too early, or nothing asked for it).
 */
import path from 'node:path';
import { Journal } from '../../engine/journal.ts';
import { judgePostboot, MOTD_FILE, postbootMotd, POSTBOOT_SERVICES, POSTBOOT_UNIT_NAME, type PostbootResult } from '../../engine/reboot.ts';
import { EXIT } from '../args.ts';
import type { Runtime } from '../runtime.ts';
import { NOT_ROOT, type Output } from './io.ts';

export const POSTBOOT_RESULT = 'postboot.json';

export async function postbootCommand(runtime: Runtime, io: Output, now: Date = new Date()): Promise<number> {
  if (!runtime.node.isRoot) {
    io.err(`pve-baseline: ${NOT_ROOT}`);
    return EXIT.notRoot;
  }
  const journal = Journal.snapshot(runtime.stateDir, runtime.node.bootId);
  const pending = Object.values(journal.all()).flatMap((r) => (r.reboot && r.reboot.bootId !== runtime.node.bootId ? [r.reboot] : []));
  if (!pending.length) {
    io.out('pve-baseline postboot: no reboot was asked for before this boot; nothing to check.');
    await disable(runtime);
    return EXIT.ok;
  }
  // The latest request is the one this boot answers.
  const record = pending.sort((a, b) => (a.requestedAt < b.requestedAt ? -1 : 1)).at(-1)!;
  const kernel = (await runtime.exec.run(['uname', '-r'])).stdout.trim();
  const active: Record<string, boolean> = {};
  for (const unit of POSTBOOT_SERVICES) active[unit] = (await runtime.exec.run(['systemctl', 'is-active', '--quiet', unit])).exitCode === 0;
  const result: PostbootResult = judgePostboot(record, { bootId: runtime.node.bootId, kernel, active, now });
  await runtime.files.write(path.join(runtime.stateDir, POSTBOOT_RESULT), `${JSON.stringify(result, null, 2)}\n`, { mode: 0o600, uid: 0, gid: 0 });
  await runtime.files.write(MOTD_FILE, postbootMotd(result), { mode: 0o644, uid: 0, gid: 0 });
  io.out(postbootMotd(result).trimEnd());
  await disable(runtime);
  return result.ok ? EXIT.ok : EXIT.failedOrDrift;
}

/** Once per requested reboot: the unit switches itself off (a later reboot checks nothing). */
async function disable(runtime: Runtime): Promise<void> {
  await runtime.exec.run(['systemctl', 'disable', POSTBOOT_UNIT_NAME]);
}

/** The last check's result, if it was made in this boot (for the run that resumes). */
export async function readPostboot(runtime: Runtime): Promise<PostbootResult | undefined> {
  const text = await runtime.files.read(path.join(runtime.stateDir, POSTBOOT_RESULT)).catch(() => null);
  if (!text) return undefined;
  try {
    const result = JSON.parse(text) as PostbootResult;
    return result.bootId === runtime.node.bootId ? result : undefined;
  } catch {
    return undefined;
  }
}

/** One line for the run that resumes: what the check after the reboot found. */
export function describePostboot(after: PostbootResult): string {
  const down = after.services.filter((s) => !s.active).map((s) => `${s.unit} not active`);
  return `After the reboot that ${after.afterStep} asked for: ${after.ok ? 'the node came back as expected' : 'NOT as expected'} (kernel ${after.kernel.running}${after.kernel.expected && !after.kernel.ok ? `, expected ${after.kernel.expected}` : ''}; ${down.join(', ') || 'Proxmox services active'}).`;
}
