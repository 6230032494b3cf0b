/**
 * proxmox-boot-tool stand-in (proxmox-kernel-helper's proxmox-boot-tool and
 * its `functions`), for the kernel selection only; the node has no ESP:
 *
 *   kernel list                 "Manually selected kernels:" (or "None."), "Automatically selected
 *                               kernels:" (the running kernel and the two newest installed, as
 *                               `get_selected_kernels` picks them, sorted by version), then
 *                               "Pinned kernel:" and "Kernel pinned on next-boot:" when set
 *   kernel add|remove VER       /etc/kernel/proxmox-boot-manual-kernels
 *   kernel pin VER [--next-boot], kernel unpin [--next-boot]
 *                               /etc/kernel/proxmox-boot-pin, /etc/kernel/next-boot-pin
 *   refresh, status             what a node without proxmox-boot-uuids says
 *
 * An installed kernel is what its package left: /boot/vmlinuz-VER with
 * /lib/modules/VER. A container cannot boot one, so the lab records the
 * "running" kernel in /run/pve-lab/running-kernel: `lab-boot` (run by
 * pve-lab-kernel.service early in every boot) writes there the kernel the boot
 * loader would start (the next-boot pin, consumed as proxmox-boot-cleanup does,
 * else the pin, else the newest installed), and /usr/local/bin/uname answers
 * `uname -r` from it. Texts not seen on a live node are [derived].
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const BOOT = process.env.PVE_LAB_BOOT_DIR ?? '/boot';
const MODULES = process.env.PVE_LAB_MODULES_DIR ?? '/lib/modules';
const KERNEL_ETC = process.env.PVE_LAB_KERNEL_ETC ?? '/etc/kernel';
export const RUNNING_KERNEL_FILE = process.env.PVE_LAB_RUNNING_KERNEL ?? '/run/pve-lab/running-kernel';
const MANUAL = `${KERNEL_ETC}/proxmox-boot-manual-kernels`;
const PIN = `${KERNEL_ETC}/proxmox-boot-pin`;
const NEXT_BOOT_PIN = `${KERNEL_ETC}/next-boot-pin`;

/** `sort -V` for kernel releases: 6.14.11-1-pve after 6.14.8-2-pve. */
function compareVersions(a: string, b: string): number {
  const x = a.split(/(\d+)/);
  const y = b.split(/(\d+)/);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i] ?? '';
    const q = y[i] ?? '';
    if (p === q) continue;
    if (i % 2 === 1) return Number(p) - Number(q);
    return p < q ? -1 : 1;
  }
  return 0;
}

function readLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  } catch {
    return [];
  }
}

/** Kernels installed: an image in /boot and its modules. */
function installed(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(BOOT);
  } catch {
    /* none */
  }
  return names
    .filter((n) => n.startsWith('vmlinuz-'))
    .map((n) => n.slice('vmlinuz-'.length))
    .filter((v) => existsSync(`${MODULES}/${v}`))
    .sort(compareVersions);
}

function running(): string | undefined {
  return readLines(RUNNING_KERNEL_FILE)[0];
}

function kernelList(): string {
  const manual = readLines(MANUAL);
  const all = installed();
  const auto = new Set(all.slice(-2));
  const now = running();
  if (now && all.includes(now)) auto.add(now);
  const pin = readLines(PIN)[0];
  const next = readLines(NEXT_BOOT_PIN)[0];
  for (const k of [pin, next]) if (k && all.includes(k)) auto.add(k);
  let out = 'Manually selected kernels:\n';
  out += manual.length ? `${manual.join('\n')}\n` : 'None.\n';
  out += '\nAutomatically selected kernels:\n';
  out += [...auto].sort(compareVersions).map((k) => `${k}\n`).join('') || 'None.\n';
  if (pin) out += `\nPinned kernel:\n${pin}\n`;
  if (next) out += `\nKernel pinned on next-boot:\n${next}\n`;
  return out;
}

function die(message: string, code = 2): never {
  process.stderr.write(`E: ${message}\n`);
  process.exit(code);
}

function requireKernel(ver: string | undefined, usage: string): string {
  if (!ver) die(`no kernel version given\n${usage}`);
  if (!installed().includes(ver)) die(`no kernel '${ver}' installed`, 1);
  return ver;
}

/** The kernel this boot "runs" (see the header). */
function labBoot(): void {
  const next = readLines(NEXT_BOOT_PIN)[0];
  const pin = readLines(PIN)[0];
  const all = installed();
  const chosen = [next, pin].find((k) => k && all.includes(k)) ?? all.at(-1);
  if (next) rmSync(NEXT_BOOT_PIN, { force: true });
  mkdirSync(RUNNING_KERNEL_FILE.replace(/\/[^/]*$/, ''), { recursive: true });
  if (chosen) writeFileSync(RUNNING_KERNEL_FILE, `${chosen}\n`);
  process.stdout.write(`booting kernel ${chosen ?? '(none installed)'}\n`);
}

const [cmd, sub, ...rest] = process.argv.slice(2);
const nextBoot = rest.includes('--next-boot');
const positional = rest.filter((a) => a !== '--next-boot');

switch (cmd) {
  case 'kernel':
    switch (sub) {
      case 'list':
        process.stdout.write(kernelList());
        break;
      case 'add': {
        const ver = requireKernel(positional[0], 'kernel add <kernel-version>');
        const manual = readLines(MANUAL);
        if (manual.includes(ver)) process.stdout.write(`${ver} already in ${MANUAL}\n`);
        else {
          mkdirSync(KERNEL_ETC, { recursive: true });
          writeFileSync(MANUAL, [...manual, ver].map((l) => `${l}\n`).join(''));
        }
        break;
      }
      case 'remove': {
        const ver = positional[0] ?? die('no kernel version given');
        const manual = readLines(MANUAL);
        if (!manual.includes(ver)) process.stdout.write(`${ver} not found in ${MANUAL}\n`);
        else writeFileSync(MANUAL, manual.filter((l) => l !== ver).map((l) => `${l}\n`).join(''));
        break;
      }
      case 'pin': {
        const ver = requireKernel(positional[0], 'kernel pin <kernel-version> [--next-boot]');
        mkdirSync(KERNEL_ETC, { recursive: true });
        const file = nextBoot ? NEXT_BOOT_PIN : PIN;
        writeFileSync(file, `${ver}\n`);
        process.stdout.write(`Set kernel '${ver}' in ${file}.\n`);
        break;
      }
      case 'unpin':
        rmSync(NEXT_BOOT_PIN, { force: true });
        if (!nextBoot) rmSync(PIN, { force: true });
        break;
      default:
        die('unknown kernel command, use one of: add, remove, list, pin, unpin');
    }
    break;
  case 'refresh':
    process.stdout.write("Running hook script 'proxmox-auto-removal'..\nRunning hook script 'zz-proxmox-boot'..\nNo /etc/kernel/proxmox-boot-uuids found, skipping ESP sync.\n");
    break;
  case 'status':
    die('/etc/kernel/proxmox-boot-uuids does not exist.');
    break;
  case 'lab-boot':
    labBoot();
    break;
  default:
    process.stdout.write('USAGE: proxmox-boot-tool <commands> [ARGS]\n\n  proxmox-boot-tool kernel <add|remove> <kernel-version>\n  proxmox-boot-tool kernel pin <kernel-version> [--next-boot]\n  proxmox-boot-tool kernel unpin [--next-boot]\n  proxmox-boot-tool kernel list\n  proxmox-boot-tool refresh [--hook <name>]\n  proxmox-boot-tool status [--quiet]\n');
    process.exit(cmd === 'help' ? 0 : 2);
}
