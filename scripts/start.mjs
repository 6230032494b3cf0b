// `npm start`: the wizard. On a Proxmox VE node it runs for real (as root);
// on any other Debian machine it runs as a rehearsal inside the lab's node,
// a disposable Debian 13 system with Proxmox stand-ins (see test/lab/README.md).
import { spawnSync } from 'node:child_process';

const step = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1;

let status = step(process.execPath, ['scripts/ensure-deps.mjs']);
if (status !== 0) process.exit(status);

const isProxmox = spawnSync('pveversion', [], { stdio: 'ignore' }).status === 0;
if (isProxmox) {
  status = step('npm', ['run', '--silent', 'build']);
  if (status === 0) status = step(process.execPath, ['dist/pve-baseline.mjs']);
} else {
  console.error('This machine is not a Proxmox VE node: starting a REHEARSAL in the lab node (nothing here is changed).');
  status = step(process.execPath, ['--import', 'tsx', 'test/lab/cli.ts', 'rehearse']);
}
process.exit(status);
