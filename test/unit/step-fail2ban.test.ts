/**
 * The fail2ban step on fakes (test/fixtures/fake-fail2ban.ts): what it
 * installs and writes on a fresh node, that the server then runs both jails
 * ignoring the management set, the node and the operator, idempotence,
 * drift when a jail is missing, journald's MaxLevelStore, the ban action by
 * Debian release, and the document. Real bans are the lab's business.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange } from '../../src/engine/change.ts';
import { validateAnswer, detectedDefault } from '../../src/engine/questions.ts';
import { fail2banStep, ignoreList, type Fail2banAnswers } from '../../steps/fail2ban.ts';
import { FILTER_FILE, JAIL_FILE, iniSection, parseIgnoreList, parseJailList, parseJailStatus } from '../../src/fail2ban/config.ts';
import { effectiveMaxLevelStore, JOURNALD_DROPIN, parseCatConfig, withDropIn } from '../../src/fail2ban/journald.ts';
import { FakeFail2ban } from '../fixtures/fake-fail2ban.ts';
import { applyPlan, failed, runStep, stepContext } from '../fixtures/step-run.ts';

const answers = (o: Partial<Fail2banAnswers> = {}): Fail2banAnswers => ({ trusted: [], ssh_maxretry: 4, web_maxretry: 5, findtime_minutes: 10, bantime_minutes: 60, ...o });
const firewall = { firewall: { management: ['10.77.9.0/24', '203.0.113.7'] } };

async function planOn(f: FakeFail2ban, a: Fail2banAnswers, answersOf: Record<string, object> = firewall) {
  const ctx = stepContext({ exec: f.exec, files: f.files, node: f.node, answersOf });
  const facts = await fail2banStep.probe(ctx);
  return { ctx, facts, plan: fail2banStep.plan(facts, a, ctx.node), preflight: fail2banStep.preflight!(facts, a, ctx.node) };
}

test('a fresh Debian 13 node: install, both files, test, restart; the server runs both jails; a second run plans nothing', async () => {
  const f = new FakeFail2ban();
  const run = await runStep(fail2banStep, answers(), { exec: f.exec, files: f.files, node: f.node, answersOf: firewall });
  assert.deepEqual(run.plan.map(describeChange), [
    'run apt-get install -y fail2ban',
    `create ${JAIL_FILE}`,
    `create ${FILTER_FILE}`,
    'run fail2ban-client -t',
    'restart fail2ban.service',
  ]);
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(run.replan, [], 'a second run plans nothing');
  assert.deepEqual([...f.jails!.keys()].sort(), ['proxmox', 'sshd']);

  const jail = f.text(JAIL_FILE)!;
  const sshd = iniSection(jail, 'sshd')!;
  assert.equal(sshd.get('backend'), 'systemd');
  assert.equal(sshd.get('journalmatch'), '_SYSTEMD_UNIT=ssh.service + _COMM=sshd + _COMM=sshd-session');
  assert.equal(sshd.get('maxretry'), '4');
  assert.equal(sshd.get('findtime'), '10m');
  assert.equal(sshd.get('bantime'), '1h');
  assert.equal(sshd.get('banaction'), 'nftables-multiport');
  assert.equal(sshd.get('ignoreself'), 'true');
  const proxmox = iniSection(jail, 'proxmox')!;
  assert.equal(proxmox.get('filter'), 'pve-baseline-proxmox');
  assert.equal(proxmox.get('journalmatch'), '_SYSTEMD_UNIT=pvedaemon.service');
  assert.equal(proxmox.get('port'), 'https,http,8006');
  assert.equal(proxmox.get('maxretry'), '5');
  assert.match(jail, /\.local file in jail\.d/, 'the file says why .local');
  // The filter matches pvedaemon's line as fail2ban's journal backend presents it.
  const failregex = iniSection(f.text(FILTER_FILE)!, 'Definition')!.get('failregex')!;
  const re = new RegExp(failregex.replace('<ADDR>', '(?<addr>(?:::f{4,6}:)?[0-9a-f.:]+)').replace('<F-USER>', '(?<user>').replace('</F-USER>', ')'));
  const m = re.exec('pve1 pvedaemon[1234]: authentication failure; rhost=::ffff:198.51.100.9 user=root@pam msg=Authentication failure');
  assert.equal(m?.groups?.user, 'root@pam');
  assert.equal(re.test('pve1 pveproxy[99]: proxy detected vanished client connection'), false);
  f.exec.assertNoUnexpected();
});

test('ignoreip: loopback, the node, the firewall management set and the SSH operator; the running jails hold it', async () => {
  const f = new FakeFail2ban({ operator: '198.51.100.20' });
  const ctx = stepContext({ exec: f.exec, files: f.files, node: f.node, answersOf: firewall });
  const facts = await fail2banStep.probe(ctx);
  const question = fail2banStep.questions!.find((q) => q.id === 'trusted')!;
  const offered = detectedDefault(question, facts);
  assert.equal(offered, '198.51.100.20', 'the operator is offered, being outside the management set');
  const decoded = await validateAnswer(question, offered);
  assert.ok(decoded.ok);
  const a = answers({ trusted: decoded.value as string[] });
  assert.deepEqual(ignoreList(facts, a), ['127.0.0.1/8', '::1', '10.77.7.2', '10.77.9.0/24', '203.0.113.7', '198.51.100.20']);
  await applyPlan(fail2banStep.plan(facts, a, ctx.node), f);
  assert.deepEqual(failed(await fail2banStep.verify(ctx, a)), []);
  const live = (await f.exec.run(['fail2ban-client', 'get', 'sshd', 'ignoreip'])).stdout;
  assert.deepEqual(parseIgnoreList(live), ['127.0.0.0/8', '::1', '10.77.7.2', '10.77.9.0/24', '203.0.113.7', '198.51.100.20']);

  // An operator inside the management set is not offered again; one left out is refused before anything changes.
  const inside = new FakeFail2ban({ operator: '10.77.9.44' });
  const insideFacts = await fail2banStep.probe(stepContext({ exec: inside.exec, files: inside.files, node: inside.node, answersOf: firewall }));
  assert.equal(detectedDefault(question, insideFacts), '');
  const outside = await planOn(new FakeFail2ban({ operator: '198.51.100.20' }), answers());
  assert.deepEqual(failed(outside.preflight), [
    "you (this session) at 198.51.100.20 are never banned (four mistyped logins would cut this very session (a ban drops the address's packets): add the address to the trusted addresses or the firewall's management set)",
  ]);
  // Without firewall answers the node itself and loopback are still there.
  const alone = await planOn(new FakeFail2ban(), answers(), {});
  assert.deepEqual(ignoreList(alone.facts, answers()), ['127.0.0.1/8', '::1', '10.77.7.2']);
});

test('in a cluster the other nodes\' ring addresses are never banned (root\'s SSH between nodes); this node\'s own is not listed twice', async () => {
  const conf = 'nodelist {\n  node {\n    name: pve1\n    nodeid: 1\n    ring0_addr: 10.77.7.2\n  }\n  node {\n    name: pve2\n    nodeid: 2\n    ring0_addr: 10.77.8.4\n  }\n  node {\n    name: pve3\n    nodeid: 3\n    ring0_addr: pve3.example\n  }\n}\n';
  const f = new FakeFail2ban({ files: { '/etc/pve/corosync.conf': conf } });
  const { facts, plan } = await planOn(f, answers(), {});
  assert.deepEqual(facts.cluster, ['10.77.8.4'], 'peers with an IP ring address (a name is not resolved here)');
  assert.deepEqual(ignoreList(facts, answers()), ['127.0.0.1/8', '::1', '10.77.7.2', '10.77.8.4']);
  const jail = plan.find((c) => c.kind === 'file' && c.path === JAIL_FILE);
  assert.ok(jail && jail.kind === 'file');
  assert.match(jail.after ?? '', /^ignoreip = 127\.0\.0\.1\/8 ::1 10\.77\.7\.2 10\.77\.8\.4$/m);
});

test('the trusted answer is checked as networks: host bits and /0 are refused, empty is allowed', async () => {
  const question = fail2banStep.questions!.find((q) => q.id === 'trusted')!;
  assert.deepEqual(await validateAnswer(question, ''), { ok: true, value: [] });
  assert.deepEqual(await validateAnswer(question, '10.0.0.0/8 2001:db8::/32'), { ok: true, value: ['10.0.0.0/8', '2001:db8::/32'] });
  assert.deepEqual(await validateAnswer(question, '10.0.0.5/8'), { ok: false, message: '"10.0.0.5/8" has host bits set: the network is 10.0.0.0/8' });
  assert.equal((await validateAnswer(question, '0.0.0.0/0')).ok, false);
  assert.equal((await validateAnswer(question, 'example.org')).ok, false);
  const maxretry = fail2banStep.questions!.find((q) => q.id === 'ssh_maxretry')!;
  assert.equal((await validateAnswer(maxretry, '1')).ok, false);
  assert.equal(detectedDefault(maxretry, {} as never), '4');
});

test('drift: a jail missing from the running server plans the test and a restart, and verify names it', async () => {
  const f = new FakeFail2ban();
  await runStep(fail2banStep, answers(), { exec: f.exec, files: f.files, node: f.node, answersOf: firewall });
  f.jails!.delete('proxmox');
  const { ctx, plan } = await planOn(f, answers());
  assert.deepEqual(plan.map(describeChange), ['run fail2ban-client -t', 'restart fail2ban.service']);
  assert.match((plan[1] as { reason: string }).reason, /lacks the proxmox jail/);
  assert.ok(failed(await fail2banStep.verify(ctx, answers())).includes('fail2ban-client status lists the sshd and proxmox jails (missing: proxmox)'));
  await applyPlan(plan, f);
  assert.deepEqual(failed(await fail2banStep.verify(ctx, answers())), []);

  // A jail file edited by hand is drift too, put back by the next run.
  await f.files.write(JAIL_FILE, f.text(JAIL_FILE)!.replace('maxretry = 4', 'maxretry = 40'));
  const again = await planOn(f, answers());
  assert.deepEqual(again.plan.map(describeChange), [`edit ${JAIL_FILE}`, 'run fail2ban-client -t', 'restart fail2ban.service']);
  assert.ok(failed(await fail2banStep.verify(again.ctx, answers())).some((x) => x.startsWith(`${JAIL_FILE} holds what the baseline intends`)));
});

test('a configuration fail2ban refuses stops the apply at fail2ban-client -t, before the restart', async () => {
  const f = new FakeFail2ban();
  const { plan } = await planOn(f, answers());
  // The filter never arrives: fail2ban-client -t names it.
  const broken = plan.filter((c) => !(c.kind === 'file' && c.path === FILTER_FILE));
  await assert.rejects(applyPlan(broken, f), /fail2ban-client -t exited with 255: .*filter\.d\/pve-baseline-proxmox/);
  assert.ok(!f.systemctl.includes('restart fail2ban.service'), 'not restarted');
});

test('journald with MaxLevelStore=warning: a drop-in (and its directory) puts info back, then journald restarts, before fail2ban', async () => {
  const f = new FakeFail2ban({ installed: true, files: { '/etc/systemd/journald.conf': '[Journal]\nMaxLevelStore=warning\n' } });
  const { ctx, plan, preflight } = await planOn(f, answers());
  assert.deepEqual(failed(preflight), []);
  assert.deepEqual(plan.map(describeChange), [
    `create ${JAIL_FILE}`,
    `create ${FILTER_FILE}`,
    'run install -d -m 0755 -o root -g root /etc/systemd/journald.conf.d',
    `create ${JOURNALD_DROPIN}`,
    'restart systemd-journald.service',
    'run fail2ban-client -t',
    'restart fail2ban.service',
  ]);
  assert.match((plan[3] as { reason: string }).reason, /\/etc\/systemd\/journald\.conf sets MaxLevelStore=warning/);
  assert.ok(failed(await fail2banStep.verify(ctx, answers())).includes('journald keeps info messages (MaxLevelStore) (MaxLevelStore=warning in /etc/systemd/journald.conf)'));
  await applyPlan(plan, f);
  assert.equal(f.journaldRestarts, 1);
  assert.deepEqual(failed(await fail2banStep.verify(ctx, answers())), []);
  assert.deepEqual((await planOn(f, answers())).plan, []);

  // A drop-in read after ours would win: refused before anything is shown, naming it.
  const later = new FakeFail2ban({ installed: true, files: { '/etc/systemd/journald.conf.d/zz-quiet.conf': '[Journal]\nMaxLevelStore=err\n' } });
  const refused = await planOn(later, answers());
  assert.deepEqual(failed(refused.preflight), [
    `journald keeps info messages once ${JOURNALD_DROPIN} is in place (/etc/systemd/journald.conf.d/zz-quiet.conf sets MaxLevelStore=err and is read after it: change that file first)`,
  ]);
});

test('Debian 12 / PVE 8: iptables-multiport and python3-systemd; Debian 13 / PVE 9: nftables-multiport', async () => {
  const bookworm = new FakeFail2ban({ debian: 12 });
  const run = await runStep(fail2banStep, answers(), { exec: bookworm.exec, files: bookworm.files, node: bookworm.node, answersOf: firewall });
  assert.equal(describeChange(run.plan[0]!), 'run apt-get install -y fail2ban python3-systemd');
  assert.equal(iniSection(bookworm.text(JAIL_FILE)!, 'sshd')!.get('banaction'), 'iptables-multiport');
  assert.match(bookworm.text(JAIL_FILE)!, /banaction = iptables-multiport: iptables chains of its own/);
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(run.replan, []);

  const trixie = new FakeFail2ban({ debian: 13 });
  await runStep(fail2banStep, answers(), { exec: trixie.exec, files: trixie.files, node: trixie.node, answersOf: firewall });
  assert.equal(iniSection(trixie.text(JAIL_FILE)!, 'proxmox')!.get('banaction'), 'nftables-multiport');
  assert.match(trixie.text(JAIL_FILE)!, /inet f2b-table/);
});

test("fail2ban-client's output as the real tool prints it", () => {
  assert.deepEqual(parseJailList('Status\n|- Number of jail:\t2\n`- Jail list:\tproxmox, sshd\n'), ['proxmox', 'sshd']);
  assert.deepEqual(parseJailList('Status\n|- Number of jail:\t0\n`- Jail list:\t\n'), []);
  assert.equal(parseJailList('ERROR   Failed to access socket path'), null);
  const status = parseJailStatus(
    'Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t2\n|  |- Total failed:\t31\n|  `- Journal matches:\t_SYSTEMD_UNIT=ssh.service + _COMM=sshd + _COMM=sshd-session\n`- Actions\n   |- Currently banned:\t2\n   |- Total banned:\t5\n   `- Banned IP list:\t192.0.2.1 2001:db8::7\n',
  );
  assert.deepEqual(status, { jail: 'sshd', currentlyFailed: 2, totalFailed: 31, currentlyBanned: 2, totalBanned: 5, bannedIps: ['192.0.2.1', '2001:db8::7'], journalMatches: '_SYSTEMD_UNIT=ssh.service + _COMM=sshd + _COMM=sshd-session' });
  assert.deepEqual(parseIgnoreList('No IP address/network is ignored\n'), []);
  assert.deepEqual(parseIgnoreList('These IP addresses/networks are ignored:\n|- 127.0.0.0/8\n`- ::1\n'), ['127.0.0.0/8', '::1']);
});

test('journald cat-config: drop-ins read after the main file, sorted by name across directories; the last value wins', () => {
  const files = parseCatConfig(
    '# /etc/systemd/journald.conf\n#  See journald.conf(5) for details.\n[Journal]\nMaxLevelStore=warning\n\n# /usr/lib/systemd/journald.conf.d/10-vendor.conf\n[Journal]\nMaxLevelStore=notice\n\n# /etc/systemd/journald.conf.d/50-mine.conf\n[Journal]\n#MaxLevelStore=debug\nStorage=persistent\n',
  );
  assert.deepEqual(files.map((x) => [x.path, x.maxLevelStore]), [
    ['/etc/systemd/journald.conf', 'warning'],
    ['/usr/lib/systemd/journald.conf.d/10-vendor.conf', 'notice'],
    ['/etc/systemd/journald.conf.d/50-mine.conf', undefined],
  ]);
  assert.deepEqual(effectiveMaxLevelStore(files), { value: 'notice', level: 5, from: '/usr/lib/systemd/journald.conf.d/10-vendor.conf' });
  assert.equal(effectiveMaxLevelStore(withDropIn(files, { path: JOURNALD_DROPIN, maxLevelStore: 'info' })).level, 6);
  assert.equal(effectiveMaxLevelStore([]).value, 'debug');
});

test('the document: jails with their thresholds, the ignore list and the current bans', async () => {
  const f = new FakeFail2ban({ operator: '10.77.9.44', bans: { sshd: ['192.0.2.66'], proxmox: [] } });
  await runStep(fail2banStep, answers(), { exec: f.exec, files: f.files, node: f.node, answersOf: firewall });
  const section = await fail2banStep.document!(stepContext({ exec: f.exec, files: f.files, node: f.node, answersOf: firewall }), answers());
  const md = JSON.stringify(section);
  assert.match(md, /"sshd","_SYSTEMD_UNIT=ssh.service \+ _COMM=sshd \+ _COMM=sshd-session","4","10m","1h","nftables-multiport","1 banned now/);
  assert.match(md, /"proxmox","_SYSTEMD_UNIT=pvedaemon.service","5"/);
  assert.match(md, /`10\.77\.9\.0\/24`/);
  assert.match(md, /sshd: `192\.0\.2\.66`; proxmox: none/);

  const fresh = new FakeFail2ban();
  const absent = await fail2banStep.document!(stepContext({ exec: fresh.exec, files: fresh.files, node: fresh.node }), {});
  assert.match(JSON.stringify(absent), /not installed/);
});
