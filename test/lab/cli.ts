/**
 * npm run lab -- <command>
 *
 *   up                 build if needed, boot, print the node and workstation addresses
 *   cluster [--fresh]  up, then pve2 joined to pve1 in a stand-in cluster (corosync, one /etc/pve)
 *   exec2 -- CMD...    run CMD as root in pve2
 *   down               stop everything the lab started (node, supervisor, mount, netns, veth)
 *   reset              back to the fresh-install state (seconds: wipe the node's disk, boot)
 *   reboot             `systemctl reboot` inside the node and wait until it is back
 *   status [--json]    what runs, where, on which images
 *   exec -- CMD...     run CMD as root in the node (exit code passed through)
 *   shell              a root shell in the node (console access, needs no sshd)
 *   ssh [-- CMD...]    ssh from the workstation side as root with the known password
 *   install            npm run build, then install dist/pve-baseline.mjs as /usr/local/bin/pve-baseline
 *   rehearse           up, install, and run the wizard in the node over ssh -t (a rehearsal)
 *   build [--force]    build the images only (--force: rebuild them from scratch)
 *   test               run the lab test suite (test/lab/*.test.ts), then check that down leaves nothing behind
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_DIR, REPO_ROOT } from './config.ts';
import { baseDir, baseRecipe, ensureImages, layerDir, layerRecipe } from './build.ts';
import { down, ensureCluster, ensureLab, labSupport, leftovers, status, type Lab } from './lab.ts';

const log = (line: string) => process.stderr.write(`lab: ${line}\n`);

function usage(code: number): never {
  const text = readFileSync(join(LAB_DIR, 'cli.ts'), 'utf8')
    .split('\n')
    .filter((l) => /^ \* {3}\S/.test(l) || /^ \* npm run lab/.test(l))
    .map((l) => l.replace(/^ \* ?/, ''))
    .join('\n');
  (code === 0 ? process.stdout : process.stderr).write(`${text}\n`);
  process.exit(code);
}

function printAddresses(lab: Lab): void {
  process.stdout.write(
    [
      `node:        ${lab.hostname} (${lab.fqdn}) at ${lab.nodeAddress}  - Debian 13 with Proxmox VE stand-ins`,
      `workstation: ${lab.workstationAddress} (this host's end of the lab's veth pair)`,
      `root login:  ssh root@${lab.nodeAddress}  password: ${lab.rootPassword}   (or: npm run lab -- shell)`,
      '',
    ].join('\n'),
  );
}

/** npm run build, then copy the bundle into the node */
async function install(lab: Lab): Promise<void> {
  log('npm run build');
  const b = spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (b.status !== 0) throw new Error(`npm run build failed (exit ${b.status})`);
  const bundle = join(REPO_ROOT, 'dist', 'pve-baseline.mjs');
  if (!existsSync(bundle)) throw new Error(`npm run build did not produce ${bundle}`);
  const target = join(lab.rootDir, 'usr', 'local', 'bin', 'pve-baseline');
  copyFileSync(bundle, target);
  chmodSync(target, 0o755);
  log(`installed ${bundle} as /usr/local/bin/pve-baseline in the node`);
}

function sshpassArgs(lab: Lab, extra: string[], command: string[]): string[] {
  return ['-e', 'ssh', ...lab.sshClientArgs('root', ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password,keyboard-interactive', ...extra]), ...command];
}

async function main(): Promise<number> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') usage(cmd ? 0 : 2);

  if (cmd !== 'status') {
    const support = await labSupport();
    if (!support.ok) {
      log(support.reason!);
      return 2;
    }
  }

  switch (cmd) {
    case 'up': {
      const lab = await ensureLab({ log });
      printAddresses(lab);
      return 0;
    }
    case 'cluster': {
      const c = await ensureCluster({ log, fresh: rest.includes('--fresh') });
      printAddresses(c.pve1);
      log(`pve2: ${c.pve2.nodeAddress} (cluster ${c.name}, quorate)`);
      return 0;
    }
    case 'exec2': {
      const argv = rest[0] === '--' ? rest.slice(1) : rest;
      if (argv.length === 0) usage(2);
      const { pve2 } = await ensureCluster({ log });
      const [bin, ...args] = pve2.execArgv(argv, process.env.TERM ? { TERM: process.env.TERM } : {});
      return spawnSync(bin!, args, { stdio: 'inherit' }).status ?? 129;
    }
    case 'down': {
      await down({ log });
      const left = await leftovers();
      if (left.netns || left.veth || left.mounts.length || left.processes.length) {
        log(`left behind: ${JSON.stringify(left)}`);
        return 1;
      }
      log('down: nothing of the lab is left running');
      return 0;
    }
    case 'reset': {
      const lab = await ensureLab({ log });
      const s = await lab.reset();
      log(`fresh node in ${s.toFixed(1)} s`);
      printAddresses(lab);
      return 0;
    }
    case 'reboot': {
      const lab = await ensureLab({ log });
      const s = await lab.reboot();
      log(`node rebooted and back in ${s.toFixed(1)} s`);
      return 0;
    }
    case 'status': {
      const st = await status();
      if (rest.includes('--json')) {
        process.stdout.write(`${JSON.stringify(st, null, 2)}\n`);
      } else {
        process.stdout.write(
          [
            `node:        ${st.hostname} at ${st.nodeAddress}: ${st.running ? `running (systemd: ${st.systemState ?? '?'})` : 'not running'}`,
            `workstation: ${st.workstationAddress} on ${st.hostInterface} (netns ${st.netns})`,
            `images:      ${st.images ? `${st.images.layer} on ${st.images.base}${st.images.current ? '' : ' (outdated: up restarts it fresh)'}` : 'not mounted'}`,
            `built in:    base ${st.buildSeconds?.base?.toFixed(1) ?? '-'} s, fresh-install layer ${st.buildSeconds?.layer?.toFixed(1) ?? '-'} s`,
            '',
          ].join('\n'),
        );
      }
      return st.running ? 0 : 3;
    }
    case 'exec': {
      const argv = rest[0] === '--' ? rest.slice(1) : rest;
      if (argv.length === 0) usage(2);
      const lab = await ensureLab({ log });
      const [bin, ...args] = lab.execArgv(argv, process.env.TERM ? { TERM: process.env.TERM } : {});
      const r = spawnSync(bin!, args, { stdio: 'inherit' });
      return r.status ?? 128 + 1;
    }
    case 'shell': {
      const lab = await ensureLab({ log });
      const [bin, ...args] = lab.execArgv(['/bin/bash', '--login'], { TERM: process.env.TERM ?? 'xterm' });
      return spawnSync(bin!, args, { stdio: 'inherit' }).status ?? 1;
    }
    case 'ssh': {
      const lab = await ensureLab({ log });
      const command = rest[0] === '--' ? rest.slice(1) : rest;
      const r = spawnSync('sshpass', sshpassArgs(lab, command.length ? [] : ['-t'], command), {
        stdio: 'inherit',
        env: { ...process.env, SSHPASS: lab.rootPassword },
      });
      return r.status ?? 1;
    }
    case 'install': {
      const lab = await ensureLab({ log });
      await install(lab);
      return 0;
    }
    case 'rehearse': {
      const lab = await ensureLab({ log });
      await install(lab);
      process.stdout.write(
        [
          '',
          '=== REHEARSAL =====================================================',
          ` pve-baseline runs on the lab node ${lab.hostname} (${lab.nodeAddress}), a Debian 13`,
          ' system with Proxmox VE stand-ins on this machine - not a real Proxmox node.',
          ` Nothing here touches this machine. Start over: npm run lab -- reset`,
          ' At the sshd step\'s countdown, prove access from a second terminal here:',
          `   ssh ADMIN@${lab.nodeAddress} (with the key you gave), or npm run lab -- exec pve-baseline confirm`,
          '===================================================================',
          '',
        ].join('\n'),
      );
      const r = spawnSync('sshpass', sshpassArgs(lab, ['-t'], ['env', 'PVE_BASELINE_REHEARSAL=1', 'pve-baseline']), {
        stdio: 'inherit',
        env: { ...process.env, SSHPASS: lab.rootPassword },
      });
      if (r.status === 5 || r.status === 255) {
        log('could not log in as root with the password: the node\'s sshd may already be hardened (that is the point).');
        log('fresh node: npm run lab -- reset     root shell without ssh: npm run lab -- shell');
      }
      return r.status ?? 1;
    }
    case 'build': {
      if (rest.includes('--force')) {
        await down({ log });
        const b = baseRecipe();
        for (const d of [baseDir(b.hash), layerDir(layerRecipe(b.hash).hash)]) rmSync(d, { recursive: true, force: true });
      }
      const images = await ensureImages(log);
      log(`images: ${images.layer} on ${images.base} (built now: base ${images.built.base.toFixed(1)} s, layer ${images.built.layer.toFixed(1)} s)`);
      return 0;
    }
    case 'test': {
      const files = readdirSync(LAB_DIR)
        .filter((f) => f.endsWith('.test.ts'))
        .sort()
        .map((f) => join(LAB_DIR, f));
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...rest, ...files], {
        cwd: REPO_ROOT,
        stdio: 'inherit',
      });
      return r.status ?? 1;
    }
    default:
      log(`unknown command '${cmd}'`);
      usage(2);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);

