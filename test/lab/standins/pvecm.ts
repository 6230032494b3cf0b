/**
 * pvecm stand-in (pve-cluster PVE/CLI/pvecm.pm): without corosync.conf,
 * status/nodes/expected fail as Proxmox does there; in the lab's cluster
 * (lab.ts cluster()) they print what pvecm.pm prints and hand over to
 * Debian's corosync-quorumtool, as pvecm.pm does. And
 * `updatecerts` does what pveproxy's ExecStartPre relies on for SSH
 * (pve-cluster's PVE/Cluster/Setup.pm): root's RSA key and
 * ~/.ssh/config, /etc/pve/priv/authorized_keys with /root/.ssh/authorized_keys
 * linked to it (a plain file is moved to authorized_keys.org and merged in),
 * root's own id_rsa.pub always appended, ssh-rsa duplicates dropped.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { DIE_EXIT_CODE, msg } from '../../../src/pve/messages.ts';
import { ETC_PVE, nodename, readFile, writeFile } from './lib/pmxcfs.ts';

const ROOT_SSH = process.env.PVE_LAB_ROOT_SSH ?? '/root/.ssh';
const rootAuthKeys = `${ROOT_SSH}/authorized_keys`;
const rootAuthKeysBackup = `${rootAuthKeys}.org`;
const clusterAuthKeys = `${ETC_PVE}/priv/authorized_keys`;
const rsaPub = `${ROOT_SSH}/id_rsa.pub`;

const isLink = (p: string) => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};
const isFile = (p: string) => {
  try {
    return lstatSync(p).isFile();
  } catch {
    return false;
  }
};
const chomp = (s: string) => s.replace(/\n$/, '');

function setupRootSshConfig(): void {
  mkdirSync(ROOT_SSH, { recursive: true, mode: 0o700 });
  if (!existsSync(rsaPub)) {
    spawnSync('ssh-keygen', ['-q', '-t', 'rsa', '-N', '', '-b', '4096', '-f', `${ROOT_SSH}/id_rsa`], { stdio: 'ignore' });
  }
  if (!existsSync(`${ROOT_SSH}/config`)) {
    writeFileSync(
      `${ROOT_SSH}/config`,
      'Ciphers aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com\n',
      { mode: 0o640 },
    );
  }
}

function setupSshKeys(): void {
  let importOk = false;
  if (!existsSync(clusterAuthKeys)) {
    const old = isFile(rootAuthKeys) || isLink(rootAuthKeys) ? safeRead(rootAuthKeys) : undefined;
    writeFile('priv/authorized_keys', old ?? '');
    importOk = true;
  }
  if (isFile(rootAuthKeys)) {
    try {
      renameSync(rootAuthKeys, rootAuthKeysBackup);
    } catch (e) {
      process.stderr.write(`rename ${rootAuthKeys} failed - ${(e as Error).message}\n`);
    }
  }
  if (!isLink(rootAuthKeys)) symlinkSync(clusterAuthKeys, rootAuthKeys);
  if (!isLink(rootAuthKeys)) process.stderr.write(`can't create symlink for ssh keys '${rootAuthKeys}' -> '${clusterAuthKeys}'\n`);
  else if (importOk && existsSync(rootAuthKeysBackup)) unlinkSync(rootAuthKeysBackup);
}

function safeRead(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function sshMergeKeys(): void {
  let data = chomp(readFile('priv/authorized_keys') ?? '');
  let foundBackup = false;
  if (isFile(rootAuthKeysBackup)) {
    data += `\n${chomp(safeRead(rootAuthKeysBackup) ?? '')}`;
    foundBackup = true;
  }
  const pub = safeRead(rsaPub);
  if (pub !== undefined) data += `\n${chomp(pub)}\n`;
  const seen = new Set<string>();
  let out = '';
  const lines = data.split('\n');
  while (lines.length && lines[lines.length - 1] === '') lines.pop(); // Perl split drops trailing empty fields
  for (const line of lines) {
    const m = /(^|\s)ssh-(rsa|dsa)\s+(\S+)\s+\S+$/.exec(line);
    if (!line.startsWith('#') && m) {
      if (seen.has(m[3]!)) continue;
      seen.add(m[3]!);
    }
    out += `${line}\n`;
  }
  writeFile('priv/authorized_keys', out);
  if (foundBackup && isLink(rootAuthKeys)) unlinkSync(rootAuthKeysBackup);
}

function nodeKnownHosts(): void {
  const hostkey = /^(ssh-rsa\s\S+)/m.exec(safeRead('/etc/ssh/ssh_host_rsa_key.pub') ?? '')?.[1];
  if (hostkey) writeFile(`nodes/${nodename()}/ssh_known_hosts`, `${nodename().toLowerCase()} ${hostkey}\n`);
}

/** pvecm.pm status: the totem section of corosync.conf, as PVE::Corosync::totem_config reads it */
function printClusterInformation(conf: string): void {
  const totem = /^totem\s*\{([\s\S]*?)^\}/m.exec(conf)?.[1] ?? '';
  const value = (key: string) => new RegExp(`^\\s*${key}:\\s*(\\S+)\\s*$`, 'm').exec(totem)?.[1];
  if (!totem.trim()) return;
  const info = (label: string, key: string, fallback: string) => process.stdout.write(`${`${label}:`.padEnd(17)} ${value(key) ?? fallback}\n`);
  process.stdout.write('Cluster information\n-------------------\n');
  info('Name', 'cluster_name', 'UNKOWN?');
  info('Config Version', 'config_version', '-1');
  info('Transport', 'transport', 'knet');
  info('Secure auth', 'secauth', 'off');
  process.stdout.write('\n');
}

const args = process.argv.slice(2);
const cmd = args[0];
if (cmd === 'status' || cmd === 'nodes' || cmd === 'expected' || cmd === 'qdevice') {
  if (!existsSync(`${ETC_PVE}/corosync.conf`)) {
    process.stderr.write(`${msg.corosyncConfMissing()}\n`);
    process.exit(DIE_EXIT_CODE);
  }
  if (cmd === 'qdevice') {
    process.stderr.write('pve-baseline lab: qdevices are not emulated\n');
    process.exit(DIE_EXIT_CODE);
  }
  if (cmd === 'status') printClusterInformation(readFile('corosync.conf') ?? '');
  // pvecm.pm: `exec('corosync-quorumtool', ...)`; the lab's cluster runs Debian's corosync
  const quorumtool = { status: ['-siH'], nodes: ['-l'], expected: ['-e', args[1] ?? ''] }[cmd];
  const r = spawnSync('corosync-quorumtool', quorumtool, { stdio: 'inherit' });
  process.exit(r.status ?? 255);
} else if (cmd === 'updatecerts') {
  const silent = args.some((a) => /^--?silent(=1)?$/.test(a));
  const force = args.some((a) => /^--?force(=1)?$/.test(a));
  const say = (s: string) => {
    if (!silent) process.stdout.write(`${s}\n`);
  };
  setupRootSshConfig();
  setupSshKeys();
  say('(re)generate node files');
  if (force) say('generate new node certificate');
  say('merge authorized SSH keys');
  sshMergeKeys();
  nodeKnownHosts();
  process.exit(0);
} else {
  const reason = cmd === undefined ? msg.noCommandSpecified() : msg.unknownCommand(`pvecm ${cmd}`);
  process.stderr.write(`${msg.errorPrefix(reason)}\n${msg.usageHeader('pvecm')}\n`);
  for (const u of ['pvecm expected <expected>', 'pvecm nodes', 'pvecm status', 'pvecm updatecerts  [OPTIONS]']) process.stderr.write(`       ${u}\n`);
  process.exit(DIE_EXIT_CODE);
}
