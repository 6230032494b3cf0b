/**
 * pveversion stand-in (pve-manager bin/pveversion):
 * `pve-manager/<version>/<repoid> (running kernel: <uname -r>)`, or with
 * -v/--verbose one `package: version` line per package.
 */
import { DIE_EXIT_CODE } from '../../../src/pve/messages.ts';
import { KERNEL, PVE_VERSION } from './lib/api.ts';

const { version, repoid } = PVE_VERSION;

/** [lab] package versions of a PVE 9.2 node (the stand-ins are not these packages) */
const PACKAGES: [string, string][] = [
  ['proxmox-ve', `9.2.0 (running kernel: ${KERNEL})`],
  ['pve-manager', `${version} (running version: ${version}/${repoid})`],
  ['libpve-access-control', '9.1.1'],
  ['libpve-common-perl', '9.2.1'],
  ['libpve-cluster-perl', '9.1.6'],
  ['pve-cluster', '9.1.6'],
  ['pve-firewall', '6.0.3'],
  ['pve-docs', '9.2.1'],
];

const args = process.argv.slice(2);
const verbose = args.some((a) => /^--?v(erbose)?$/.test(a));
if (args.some((a) => !/^--?v(erbose)?$/.test(a))) {
  process.stderr.write('USAGE: pveversion [--verbose]\n'); // [derived]
  process.exit(DIE_EXIT_CODE);
}
if (!verbose) process.stdout.write(`pve-manager/${version}/${repoid} (running kernel: ${KERNEL})\n`);
else process.stdout.write(PACKAGES.map(([p, v]) => `${p}: ${v}\n`).join(''));
