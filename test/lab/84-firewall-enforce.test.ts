/**
 * The lab's firewall enforces: cluster.fw / host.fw written by hand (as an
 * administrator or a guide would), compiled by the node's pve-firewall
 * daemon and applied as nftables `table inet proxmox-firewall` in the node's
 * network namespace. Proven from the workstation side with real TCP
 * connections and pings from three addresses: 10.77.7.1 (inside the node's
 * local network, so in Proxmox's management set), a remote operator and an
 * outsider (both outside it). "timed out" is a DROP, "refused" a REJECT (or
 * no listener), "connected" an ACCEPT.
 *
 * Every test restores cluster.fw and host.fw and waits for the daemon to
 * apply them again: later test files share the node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labOrSkip } from './helpers.ts';
import { OUTSIDER_ADDRESS, REMOTE_NETWORK, REMOTE_OPERATOR_ADDRESS, ROOT_PASSWORD, WORKSTATION_ADDRESS } from './config.ts';
import { run, sleep } from './sh.ts';
import type { Lab, TcpProbeResult } from './lab.ts';

const lab = await labOrSkip();

const UNIT = 'pve-firewall.service';
const CLUSTER = '/etc/pve/firewall/cluster.fw';
const LOCAL = WORKSTATION_ADDRESS;
const OPERATOR = REMOTE_OPERATOR_ADDRESS;
const OUTSIDER = OUTSIDER_ADDRESS;
/** a DROP shows as silence: this long without an answer counts as "timed out" */
const PROBE_MS = 800;
const CLOSED_PORT = 9999;

const ENABLED_WITH_OPERATOR = `[OPTIONS]\n\nenable: 1\n\n[IPSET management]\n\n${OPERATOR} # remote operator\n`;

if (lab) {
  const HOST = `/etc/pve/nodes/${lab.hostname}/host.fw`;

  /** write a file as pmxcfs holds it (root:www-data 0640), atomically: the daemon may read at any moment */
  async function writeFw(path: string, content: string | undefined): Promise<void> {
    const r =
      content === undefined
        ? await lab!.exec(['rm', '-f', path])
        : await lab!.exec(['sh', '-c', 'umask 027 && cat > "$1.tmp" && chgrp www-data "$1.tmp" && mv "$1.tmp" "$1"', 'sh', path], { input: content });
    assert.equal(r.exitCode, 0, r.stderr);
  }

  async function status(): Promise<string> {
    const r = await lab!.exec(['pve-firewall', 'status']);
    assert.equal(r.exitCode, 0, r.stderr);
    return r.stdout;
  }

  /** poll until the daemon has applied what the files say; returns the milliseconds it took */
  async function settled(timeoutMs = 15_000): Promise<number> {
    const t0 = Date.now();
    let last = '';
    while (Date.now() - t0 < timeoutMs) {
      last = await status();
      if (/\/running\n$/.test(last)) return Date.now() - t0;
      await sleep(150);
    }
    throw new Error(`the daemon did not apply within ${timeoutMs} ms: ${last}`);
  }

  /** `pve-firewall restart`: the daemon re-reads and applies at once (instead of at its next loop) */
  async function applyNow(): Promise<void> {
    const r = await lab!.exec(['pve-firewall', 'restart']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(await status(), /\/running\n$/, 'applied when restart returns');
  }

  async function table(): Promise<{ present: boolean; text: string }> {
    const r = await lab!.exec(['nft', 'list', 'table', 'inet', 'proxmox-firewall']);
    return { present: r.exitCode === 0, text: r.stdout };
  }

  /** what each (from, port) meets, probed in parallel */
  async function probes(list: [from: string, port: number][]): Promise<string[]> {
    const res = await Promise.all(list.map(([from, port]) => lab!.tcpProbe(port, { from, timeoutMs: PROBE_MS })));
    return list.map(([from, port], i) => `${from}:${port} ${res[i]}`);
  }

  const expect = (list: [string, number, TcpProbeResult][]) => ({
    list: list.map(([f, p]) => [f, p] as [string, number]),
    want: list.map(([f, p, r]) => `${f}:${p} ${r}`),
  });

  async function assertProbes(list: [string, number, TcpProbeResult][]): Promise<void> {
    const e = expect(list);
    assert.deepEqual(await probes(e.list), e.want);
  }

  /** run a test body with the files as they are restored afterwards, the daemon running and settled */
  async function withFiles(body: (l: Lab) => Promise<void>): Promise<void> {
    const saved: [string, string | undefined][] = [];
    for (const p of [CLUSTER, HOST]) {
      const r = await lab!.exec(['cat', p]);
      saved.push([p, r.exitCode === 0 ? r.stdout : undefined]);
    }
    await lab!.exec(['systemctl', 'start', UNIT]);
    try {
      await body(lab!);
    } finally {
      for (const [p, c] of saved) await writeFw(p, c);
      await lab!.exec(['systemctl', 'start', UNIT]);
      await applyNow();
    }
  }

  test('firewall off: the table is absent and every address connects', () =>
    withFiles(async () => {
      await writeFw(CLUSTER, '[OPTIONS]\n\nenable: 0\n');
      await writeFw(HOST, undefined);
      await applyNow();
      assert.equal(await status(), 'Status: disabled/running\n');
      assert.equal((await table()).present, false, 'no table inet proxmox-firewall');
      await assertProbes([
        [LOCAL, 22, 'connected'],
        [OPERATOR, 22, 'connected'],
        [OUTSIDER, 22, 'connected'],
        [OUTSIDER, 8006, 'connected'],
        [OUTSIDER, CLOSED_PORT, 'refused'],
      ]);
      assert.ok(await lab!.ping({ from: OUTSIDER }), 'the outsider pings the node');
      const c = await lab!.exec(['pve-firewall', 'compile']);
      assert.equal(c.stderr, '');
      assert.match(c.stdout, /\nno changes\nfirewall disabled\n$/);
    }));

  test('cluster enable + [IPSET management]: the operator and the local network get 22 and 8006, the outsider times out', () =>
    withFiles(async () => {
      await writeFw(HOST, undefined);
      await writeFw(CLUSTER, ENABLED_WITH_OPERATOR);
      const ms = await settled();
      assert.ok(ms < 7000, `applied after ${ms} ms (the loop runs every 5 s)`);
      await assertProbes([
        [OPERATOR, 22, 'connected'],
        [OPERATOR, 8006, 'connected'],
        [LOCAL, 22, 'connected'],
        [LOCAL, 8006, 'connected'],
        [OUTSIDER, 22, 'timed out'],
        [OUTSIDER, 8006, 'timed out'],
        // policy_in DROP: a port nothing listens on is silent too, not refused
        [OPERATOR, CLOSED_PORT, 'timed out'],
      ]);
      // real logins: ssh2 and the OpenSSH client, each bound to a source address
      const ok = await lab!.ssh({ user: 'root', password: ROOT_PASSWORD, from: OPERATOR, timeoutMs: 10_000 }, 'echo $SSH_CLIENT');
      assert.equal(ok.exitCode, 0);
      assert.match(ok.stdout, new RegExp(`^${OPERATOR.replace(/\./g, '\\.')} `));
      await assert.rejects(lab!.ssh({ user: 'root', password: ROOT_PASSWORD, from: OUTSIDER, timeoutMs: 1500 }, 'true'), /timed out/i);
      const openssh = await run('sshpass', ['-p', ROOT_PASSWORD, 'ssh', ...lab!.sshClientArgs('root', ['-o', 'ConnectTimeout=2'], OPERATOR), 'echo $SSH_CLIENT']);
      assert.equal(openssh.exitCode, 0, openssh.stderr);
      assert.match(openssh.stdout, new RegExp(`^${OPERATOR.replace(/\./g, '\\.')} `));
      const blocked = await run('sshpass', ['-p', ROOT_PASSWORD, 'ssh', ...lab!.sshClientArgs('root', ['-o', 'ConnectTimeout=1'], OUTSIDER), 'true']);
      assert.equal(blocked.exitCode, 255);
      assert.match(blocked.stderr, /timed out/i);
      // what the kernel holds: the management set (the ipset merged with the local network) and the policy last
      const t = await table();
      assert.ok(t.present);
      assert.match(t.text, new RegExp(`set v4-dc/management \\{[^}]*elements = \\{ [^}]*${OPERATOR.replace(/\./g, '\\.')}[^}]*\\}`));
      assert.match(t.text, /elements = \{[^}]*10\.77\.7\.0\/24/);
      assert.match(t.text, /ip saddr @v4-dc\/management tcp dport 22 accept comment "[^"]*management[^"]*"/);
      assert.match(t.text, /drop comment "policy_in DROP"\n\t\}\n\}/);
      // Proxmox's simulator agrees with the kernel
      for (const [src, want] of [[OPERATOR, 'ACCEPT'], [OUTSIDER, 'DROP']] as const) {
        const s = await lab!.exec(['pve-firewall', 'simulate', '--source', src, '--dport', '22']);
        assert.equal(s.stdout, `Test packet:\n  from    : outside\n  to      : host\n  proto   : tcp\n  source  : ${src}\n  dport   : 22\nACTION: ${want}\n`);
      }
    }));

  test('a host.fw rule comes before the management rules: IN DROP -p tcp -dport 22 cuts 22 for the operator, IN REJECT refuses it', () =>
    withFiles(async () => {
      await writeFw(CLUSTER, ENABLED_WITH_OPERATOR);
      await writeFw(HOST, '[RULES]\n\nIN DROP -p tcp -dport 22 # nobody over ssh\n');
      await applyNow();
      await assertProbes([
        [OPERATOR, 22, 'timed out'],
        [LOCAL, 22, 'timed out'],
        [OPERATOR, 8006, 'connected'],
      ]);
      const t = await table();
      const drop = t.text.indexOf('tcp dport 22 drop comment');
      const mgmt = t.text.indexOf('ip saddr @v4-dc/management tcp dport 22 accept');
      assert.ok(drop > 0 && mgmt > drop, `the host rule comes first:\n${t.text}`);
      await writeFw(HOST, '[RULES]\n\nIN REJECT -p tcp -dport 22\n');
      await applyNow();
      await assertProbes([
        [OPERATOR, 22, 'refused'],
        [OUTSIDER, 22, 'refused'],
        [OUTSIDER, 8006, 'timed out'],
      ]);
    }));

  test('ICMP echo is dropped unless a Ping rule lets it in', () =>
    withFiles(async () => {
      await writeFw(HOST, undefined);
      await writeFw(CLUSTER, ENABLED_WITH_OPERATOR);
      await applyNow();
      assert.equal(await lab!.ping({ from: LOCAL }), false, 'local network: no echo reply');
      assert.equal(await lab!.ping({ from: OPERATOR }), false, 'operator: no echo reply');
      await writeFw(CLUSTER, `${ENABLED_WITH_OPERATOR}\n[RULES]\n\nIN Ping(ACCEPT) -source +management\n`);
      await applyNow();
      assert.equal(await lab!.ping({ from: OPERATOR }), true, 'operator pings');
      assert.equal(await lab!.ping({ from: LOCAL }), true, 'the local network is in +management');
      assert.equal(await lab!.ping({ from: OUTSIDER }), false, 'the outsider is not');
    }));

  test('status shows pending changes right after an edit, and not once the daemon loop applied it', () =>
    withFiles(async () => {
      await writeFw(HOST, undefined);
      await writeFw(CLUSTER, ENABLED_WITH_OPERATOR);
      await applyNow();
      assert.equal(await status(), 'Status: enabled/running\n');
      assert.match((await lab!.exec(['pve-firewall', 'compile'])).stdout, /\nno changes\n$/);
      await assertProbes([[OUTSIDER, 22, 'timed out']]);
      // let the outsider in too. The daemon is frozen meanwhile so its loop cannot
      // apply between the edit and the two reads (it would, 1 time in 50)
      assert.equal((await lab!.exec(['systemctl', 'kill', '--signal=SIGSTOP', UNIT])).exitCode, 0);
      try {
        await writeFw(CLUSTER, `${ENABLED_WITH_OPERATOR}${OUTSIDER}\n`);
        assert.equal(await status(), 'Status: enabled/running (pending changes)\n');
        const c = await lab!.exec(['pve-firewall', 'compile']);
        assert.equal(c.stderr, '');
        assert.match(c.stdout, /\ndetected changes\n$/);
        await assertProbes([[OUTSIDER, 22, 'timed out']]);
      } finally {
        await lab!.exec(['systemctl', 'kill', '--signal=SIGCONT', UNIT]);
      }
      const ms = await settled();
      assert.ok(ms < 7000, `applied after ${ms} ms`);
      await assertProbes([[OUTSIDER, 22, 'connected']]);
      const log = await lab!.exec(['journalctl', '-b', '-u', UNIT, '--no-pager', '-o', 'cat']);
      assert.match(log.stdout, /update: applied table inet proxmox-firewall: .*policy_in DROP/);
      // a rule Proxmox cannot parse: warned about on stderr, as compile does, and skipped
      await writeFw(HOST, '[RULES]\n\nIN FOO -p tcp\n');
      const w = await lab!.exec(['pve-firewall', 'compile']);
      assert.match(w.stderr, /host\.fw \(line 3\) - errors in rule parameters: IN FOO -p tcp/);
    }));

  test('pve-firewall stop removes the table and lets everyone in; start applies again', () =>
    withFiles(async () => {
      await writeFw(HOST, undefined);
      await writeFw(CLUSTER, ENABLED_WITH_OPERATOR);
      await applyNow();
      assert.equal((await table()).present, true);
      const stop = await lab!.exec(['pve-firewall', 'stop']);
      assert.equal(stop.exitCode, 0, stop.stderr);
      assert.equal(await status(), 'Status: enabled/stopped\n');
      assert.equal((await table()).present, false);
      await assertProbes([[OUTSIDER, 22, 'connected']]);
      const log = await lab!.exec(['journalctl', '-b', '-u', UNIT, '--no-pager', '-o', 'cat']);
      assert.match(log.stdout, /clear PVE-generated firewall rules/);
      const start = await lab!.exec(['pve-firewall', 'start']);
      assert.equal(start.exitCode, 0, start.stderr);
      await applyNow();
      assert.equal((await table()).present, true);
      await assertProbes([[OUTSIDER, 22, 'timed out'], [OPERATOR, 22, 'connected']]);
      // stopping the unit does the same
      await lab!.exec(['systemctl', 'stop', UNIT]);
      assert.equal((await table()).present, false);
    }));

  test('a node reboot re-applies the rules at boot, and the remote addresses still route', () =>
    withFiles(async () => {
      await writeFw(HOST, undefined);
      await writeFw(CLUSTER, ENABLED_WITH_OPERATOR);
      await applyNow();
      const seconds = await lab!.reboot();
      // the daemon applies at its start; sshd may answer a moment before
      const t0 = Date.now();
      while (!(await table()).present && Date.now() - t0 < 10_000) await sleep(100);
      assert.equal((await table()).present, true, 'table inet proxmox-firewall after the reboot');
      const log = await lab!.exec(['journalctl', '-b', '-u', UNIT, '--no-pager', '-o', 'cat']);
      assert.match(log.stdout, /^start: applied table inet proxmox-firewall: /m, 'applied by this boot\'s daemon');
      assert.equal(await status(), 'Status: enabled/running\n');
      await assertProbes([
        [OPERATOR, 22, 'connected'],
        [OPERATOR, 8006, 'connected'],
        [OUTSIDER, 22, 'timed out'],
      ]);
      const route = await lab!.exec(['ip', 'route', 'show', REMOTE_NETWORK]);
      assert.match(route.stdout, new RegExp(`via ${WORKSTATION_ADDRESS.replace(/\./g, '\\.')} dev vmbr0`));
      assert.ok(seconds < 60, `rebooted in ${seconds} s`);
    }));
}
