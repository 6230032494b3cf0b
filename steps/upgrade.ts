/**
 * A full upgrade you can watch (issue 16; proxmox-steps.md B.6): Proxmox VE
 * needs dist-upgrade semantics (point releases add and remove packages), so
 * the step runs `apt-get dist-upgrade` in the open, after a simulation that
 * refuses an upgrade that would take a core package away (wrong
 * repositories: pve-apt-hook's own warning, before anything happens).
 *
 *   probe     `apt-get update` (as Proxmox's daily update does), the simulated dist-upgrade,
 *             `dpkg --audit` (an interrupted earlier run)
 *   plan      `dpkg --configure -a` first when dpkg was interrupted; then the upgrade with apt's
 *             progress on fd 3 (the wizard's bar), configuration files kept as the operator
 *             left them (--force-confold), the whole output kept under <state>/logs (0600);
 *             both run on if pve-baseline ends first (a dropped session: CommandChange.survivesExit)
 *   undo      none: packages are not downgraded (the plan says so)
 *   verify    nothing left to upgrade, dpkg consistent
 *   reboot    when the newest kernel proxmox-boot-tool would boot (or the pinned one) is not
 *             the running one; running guests are listed first
 */
import type { Change } from '../src/engine/change.ts';
import type { RebootNeed } from '../src/engine/reboot.ts';
import type { Check, Step, StepContext } from '../src/engine/step.ts';
import { distUpgradeArgv, parseSimulation, simulateArgv, simulationRefusal, type Simulation } from '../src/apt/progress.ts';
import { code, paragraph, table, type DocumentSection } from '../src/report/section.ts';
import { repositoriesStep } from './repositories.ts';

export interface UpgradeFacts {
  /** apt-get update's failure, if it failed (the repositories step fixes the usual one). */
  updateProblem?: string;
  simulation: Simulation;
  /** Packages dpkg left half-installed or unconfigured (dpkg --audit), one line each. */
  audit: string[];
}

export type UpgradeAnswers = Record<string, never>;

/** A simulated upgrade's packages, one line each: "pve-manager 9.2.11 -> 9.2.12". */
export function upgradeLines(sim: Simulation): string[] {
  return sim.install.map((p) => `${p.package} ${p.current ? `${p.current} -> ${p.candidate ?? '?'}` : `(new) ${p.candidate ?? ''}`.trim()}`);
}

/** apt's words when another apt or dpkg holds a lock it needs (apt-pkg/contrib/fileutl.cc GetLock). */
const APT_LOCKED = /Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock directory/;

const KERNEL_PACKAGE = /^(?:proxmox|pve)-kernel-\d+\.\d+\.\d+-\d+-pve(?:-signed)?$/;

async function simulate(ctx: Pick<StepContext, 'exec'>): Promise<Simulation> {
  const r = await ctx.exec.run(simulateArgv(), { timeoutMs: 300_000 });
  if (r.exitCode !== 0) throw new Error(`apt-get -s dist-upgrade exited with ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return parseSimulation(r.stdout);
}

async function dpkgAudit(ctx: Pick<StepContext, 'exec'>): Promise<string[]> {
  const r = await ctx.exec.run(['dpkg', '--audit']);
  return r.stdout.split('\n').filter((l) => /^ \S/.test(l)).map((l) => l.trim());
}

export const upgradeStep: Step<UpgradeFacts, UpgradeAnswers> = {
  id: 'upgrade',
  title: 'Full upgrade',
  summary: 'apt-get dist-upgrade with its progress shown, refused if it would remove Proxmox VE itself; a reboot when a new kernel waits.',
  scope: 'node',
  risk: 'reboot',
  dependsOn: [repositoriesStep.id],

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node'),

  async probe(ctx) {
    const update = await ctx.exec.run(['apt-get', 'update', '-q'], { timeoutMs: 600_000 });
    const updateProblem = update.exitCode === 0 ? undefined : (update.stderr.trim().split('\n').filter((l) => /^(E|Err|Error):?/.test(l)).slice(-3).join('; ') || `apt-get update exited with ${update.exitCode}`);
    // Another apt or dpkg holds its lock (unattended-upgrades, someone's apt-get): nothing to plan on until it ends.
    if (updateProblem && APT_LOCKED.test(updateProblem)) throw new Error(`${updateProblem}: another apt or dpkg is running; let it end, then run pve-baseline again`);
    return { ...(updateProblem ? { updateProblem } : {}), simulation: await simulate(ctx), audit: await dpkgAudit(ctx) };
  },

  preflight(facts) {
    const refusal = simulationRefusal(facts.simulation);
    return [
      { label: 'apt-get update reads every repository', ok: facts.updateProblem === undefined, ...(facts.updateProblem ? { detail: `${facts.updateProblem}: fix the repositories first (the repositories step)` } : {}) },
      { label: 'The upgrade keeps Proxmox VE', ok: refusal === undefined, ...(refusal ? { detail: `${refusal}. Simulated: ${facts.simulation.remove.map((r) => `Remv ${r.package}`).join(', ')}` } : {}) },
    ];
  },

  plan(facts) {
    const changes: Change[] = [];
    if (facts.audit.length) {
      changes.push({
        kind: 'command',
        // The upgrade's own rule for configuration files (see distUpgradeArgv): with no terminal, a prompt would fail.
        argv: ['dpkg', '--force-confdef', '--force-confold', '--configure', '-a'],
        log: 'dpkg-configure',
        survivesExit: true,
        reason: `an earlier upgrade was interrupted: dpkg reports ${facts.audit.slice(0, 3).join('; ')}${facts.audit.length > 3 ? ` and ${facts.audit.length - 3} more` : ''}; this finishes it`,
      });
    }
    const sim = facts.simulation;
    if (sim.install.length || sim.remove.length) {
      const lines = upgradeLines(sim);
      const kernels = sim.install.filter((p) => KERNEL_PACKAGE.test(p.package) && !p.current).map((p) => p.package);
      changes.push({
        kind: 'command',
        argv: distUpgradeArgv(),
        progress: 'apt',
        log: 'upgrade',
        // dpkg cut off half-way leaves packages broken: the upgrade finishes even if the session drops.
        survivesExit: true,
        reason: [
          `${sim.install.length} package(s): ${lines.slice(0, 8).join(', ')}${lines.length > 8 ? `, and ${lines.length - 8} more` : ''}`,
          sim.remove.length ? `removes ${sim.remove.map((r) => r.package).join(', ')}` : '',
          kernels.length ? `a new kernel (${kernels.join(', ')}): a reboot follows, on your word` : '',
          'configuration files you changed are kept (the package\'s version is put beside them); packages are not downgraded by a revert',
        ]
          .filter(Boolean)
          .join('; '),
      });
    }
    return changes;
  },

  async verify(ctx) {
    const sim = await simulate(ctx);
    const audit = await dpkgAudit(ctx);
    const checks: Check[] = [
      { label: 'Nothing left to upgrade', ok: sim.install.length === 0 && sim.remove.length === 0, ...(sim.install.length ? { detail: upgradeLines(sim).slice(0, 5).join(', ') } : {}) },
      { label: 'dpkg is consistent (dpkg --audit)', ok: audit.length === 0, ...(audit.length ? { detail: audit.slice(0, 3).join('; ') } : {}) },
    ];
    if (sim.keptBack.length) checks.push({ label: 'Nothing kept back', ok: false, detail: `kept back: ${sim.keptBack.join(', ')}` });
    return checks;
  },

  async rebootNeeded(ctx) {
    return kernelRebootNeed(ctx);
  },

  async document(ctx) {
    const running = (await ctx.exec.run(['uname', '-r'])).stdout.trim();
    const boot = parseKernelList((await ctx.exec.run(['proxmox-boot-tool', 'kernel', 'list'])).stdout);
    const section: DocumentSection = {
      heading: 'Upgrades and reboots',
      blocks: [
        paragraph(
          `Proxmox VE is upgraded with ${code('apt-get dist-upgrade')} (point releases add and remove packages, which ${code('apt-get upgrade')} holds back), run by pve-baseline in the open with its output kept under ${code('/var/lib/pve-baseline/logs')}; an upgrade that would remove ${code('proxmox-ve')} is refused before it starts. The node reboots only when a person says so.`,
        ),
        table(
          ['Fact', 'Value'],
          [
            ['Running kernel', running || 'unknown'],
            ['Kernel the node boots next', boot.pinned ? `${boot.pinned} (pinned)` : (boot.newest ?? 'unknown')],
          ],
        ),
      ],
      evidence: ['uname -r', 'proxmox-boot-tool kernel list'],
    };
    return section;
  },
};

/** `proxmox-boot-tool kernel list`: the kernels it would boot, newest last, and a pinned one. */
export function parseKernelList(text: string): { automatic: string[]; manual: string[]; pinned?: string; newest?: string } {
  const out: { automatic: string[]; manual: string[]; pinned?: string } = { automatic: [], manual: [] };
  let section: 'manual' | 'automatic' | 'pinned' | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (/^Manually selected kernels:/.test(line)) section = 'manual';
    else if (/^Automatically selected kernels:/.test(line)) section = 'automatic';
    else if (/^Pinned kernel:/.test(line)) section = 'pinned';
    else if (!line || line === 'None.') continue;
    else if (section === 'pinned') out.pinned = line;
    else if (section === 'manual' || section === 'automatic') out[section].push(line);
  }
  const all = [...out.manual, ...out.automatic].sort(compareKernels);
  return { ...out, ...(all.length ? { newest: all.at(-1)! } : {}) };
}

/** Kernel releases as versions: 6.14.11-1-pve after 6.14.8-2-pve. */
export function compareKernels(a: string, b: string): number {
  const parts = (k: string) => k.split(/[.-]/).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const x = parts(a);
  const y = parts(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === q) continue;
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    if (typeof p === 'number' && typeof q === 'number') return p - q;
    return String(p) < String(q) ? -1 : 1;
  }
  return 0;
}

/**
 * Whether the node should reboot: the kernel it would boot (the pinned one,
 * else the newest proxmox-boot-tool lists) is not the one running. Proxmox
 * kernels leave no /run/reboot-required, so this is read from the boot tool.
 */
export async function kernelRebootNeed(ctx: Pick<StepContext, 'exec'>): Promise<RebootNeed | undefined> {
  const list = await ctx.exec.run(['proxmox-boot-tool', 'kernel', 'list']);
  if (list.exitCode !== 0) return undefined;
  const boot = parseKernelList(list.stdout);
  const next = boot.pinned ?? boot.newest;
  const running = (await ctx.exec.run(['uname', '-r'])).stdout.trim();
  if (!next || !running || next === running) return undefined;
  const guests = await runningGuests(ctx);
  const stale = await staleServices(ctx);
  return {
    reason: boot.pinned ? `kernel ${next} is pinned; ${running} runs` : `kernel ${next} is installed; ${running} runs`,
    expectKernel: next,
    runningGuests: guests,
    ...(stale.length ? { staleServices: stale } : {}),
  };
}

/**
 * needrestart's batch mode (`needrestart -b`, README.batch), when installed:
 * the services still running code an upgrade replaced ("NEEDRESTART-SVC:
 * pvedaemon.service"). Batch mode only lists; it restarts nothing.
 */
export async function staleServices(ctx: Pick<StepContext, 'exec'>): Promise<string[]> {
  const r = await ctx.exec.run(['needrestart', '-b']);
  if (r.exitCode !== 0 || r.notFound) return [];
  return parseNeedrestart(r.stdout).services;
}

export function parseNeedrestart(text: string): { kernelStatus?: number; services: string[] } {
  const services: string[] = [];
  let kernelStatus: number | undefined;
  for (const line of text.split('\n')) {
    const svc = /^NEEDRESTART-SVC:\s*(\S+)/.exec(line);
    if (svc) services.push(svc[1]!);
    const ksta = /^NEEDRESTART-KSTA:\s*(\d)/.exec(line);
    if (ksta) kernelStatus = Number(ksta[1]);
  }
  return { ...(kernelStatus !== undefined ? { kernelStatus } : {}), services };
}

/** Guests running on this node, as "100 (web1)": they stop with a reboot unless they start on boot or HA restarts them. */
async function runningGuests(ctx: Pick<StepContext, 'exec'>): Promise<string[]> {
  const r = await ctx.exec.run(['pvesh', 'get', '/cluster/resources', '--type', 'vm', '--output-format', 'json']);
  if (r.exitCode !== 0) return [];
  try {
    const list = JSON.parse(r.stdout) as { vmid?: number; name?: string; status?: string }[];
    return list.filter((g) => g.status === 'running').map((g) => `${g.vmid}${g.name ? ` (${g.name})` : ''}`);
  } catch {
    return [];
  }
}
