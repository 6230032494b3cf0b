/**
 * A reboot the baseline survives (issue 16): a step says when the node must
 * reboot to take its change in full (a new kernel); the runner journals what
 * it expects to find afterwards ("rebooting after step N, expecting kernel
 * K") and installs a oneshot unit that, on the next boot, checks the node
 * came back as expected, records it, and tells the next login how to go on.
 * `pve-baseline` then resumes at the next step, asking nothing it was told.
 *
 * This module is the data and the unit; the runner decides when, the CLI's
 * `postboot` command runs the check.
 */
import type { Exec } from '../system/exec.ts';
import type { Files } from '../system/files.ts';

/** What a step says when its change needs a reboot. */
export interface RebootNeed {
  /** In the operator's words: "kernel 6.14.11-1-pve is installed; 6.14.8-2-pve runs". */
  reason: string;
  /** The kernel release the node should run after the reboot (uname -r). */
  expectKernel?: string;
  /** Guests running now, and what the reboot does to them (they stop, unless HA or onboot restarts them). */
  runningGuests?: string[];
  /** Services still running replaced code (needrestart -b): a reboot restarts them too. */
  staleServices?: string[];
}

/** Journaled with the step before the reboot. */
export interface RebootRecord extends RebootNeed {
  afterStep: string;
  requestedAt: string;
  /** The boot the request was made in: a later boot is "after the reboot". */
  bootId: string;
}

/** What the postboot check found, written once per boot. */
export interface PostbootResult {
  afterStep: string;
  bootId: string;
  checkedAt: string;
  kernel: { expected?: string; running: string; ok: boolean };
  services: { unit: string; active: boolean }[];
  ok: boolean;
}

export const POSTBOOT_UNIT_NAME = 'pve-baseline-postboot.service';
/** The services a Proxmox VE node needs back after a reboot; the firewall as whichever daemon the node has. */
export const POSTBOOT_SERVICES = ['pve-cluster.service', 'pvedaemon.service', 'pveproxy.service', 'pve-firewall.service'] as const;
/** pam_motd reads this directory at every login (Debian 13's libpam-modules); /run is emptied by the next boot. */
export const MOTD_FILE = '/run/motd.d/pve-baseline';

/**
 * The oneshot unit: after Proxmox's services are up (so the check sees them),
 * once per boot, then it disables itself (the postboot command does).
 */
export function postbootUnit(binary: string): string {
  return [
    '# Written by pve-baseline: checks the node after a reboot the baseline asked for, once.',
    '[Unit]',
    'Description=pve-baseline: check the node after its reboot',
    'After=network-online.target pve-cluster.service pvedaemon.service pveproxy.service pve-firewall.service',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${binary} postboot`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** "rebooting after sysctl, expecting kernel 6.14.11-1-pve" */
export function describeReboot(record: RebootRecord): string {
  return `rebooting after ${record.afterStep}${record.expectKernel ? `, expecting kernel ${record.expectKernel}` : ''}`;
}

/** The postboot check, from the facts it read: pure, so a test can give any. */
export function judgePostboot(record: RebootRecord, facts: { bootId: string; kernel: string; active: Record<string, boolean>; now: Date }): PostbootResult {
  const kernelOk = record.expectKernel === undefined || record.expectKernel === facts.kernel;
  const services = POSTBOOT_SERVICES.map((unit) => ({ unit, active: facts.active[unit] === true }));
  return {
    afterStep: record.afterStep,
    bootId: facts.bootId,
    checkedAt: facts.now.toISOString(),
    kernel: { ...(record.expectKernel ? { expected: record.expectKernel } : {}), running: facts.kernel, ok: kernelOk },
    services,
    ok: kernelOk && services.every((s) => s.active),
  };
}

/** The message of the day after the reboot: what was found, and how to go on. */
export function postbootMotd(result: PostbootResult): string {
  const lines = [
    `pve-baseline: this node was rebooted after the step ${result.afterStep}.`,
    result.kernel.ok ? `  kernel ${result.kernel.running}${result.kernel.expected ? ' as expected' : ''}` : `  KERNEL ${result.kernel.running}, NOT ${result.kernel.expected} as expected: check proxmox-boot-tool kernel list (a pinned kernel?)`,
    ...result.services.map((s) => `  ${s.unit}: ${s.active ? 'active' : 'NOT ACTIVE: systemctl status ' + s.unit}`),
    result.ok ? '  Run pve-baseline to continue where it stopped.' : '  Fix what is not as expected, then run pve-baseline to continue.',
    '',
  ];
  return lines.join('\n');
}

/**
 * Before the reboot: the unit in place and enabled, so the check runs
 * whoever reboots the node (the wizard now, or Ansible after `apply` exits
 * asking for it).
 */
export async function installPostboot(files: Pick<Files, 'write'>, exec: Exec, binary: string, unitDir = '/etc/systemd/system'): Promise<void> {
  await files.write(`${unitDir}/${POSTBOOT_UNIT_NAME}`, postbootUnit(binary), { mode: 0o644, uid: 0, gid: 0 });
  for (const argv of [['systemctl', 'daemon-reload'], ['systemctl', 'enable', POSTBOOT_UNIT_NAME]]) {
    const r = await exec.run(argv);
    if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} exited with ${r.exitCode}: ${r.stderr.trim()}`);
  }
}
