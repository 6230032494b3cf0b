/**
 * The node's API on 8006, from the workstation side over HTTPS (the
 * certificate checked against the node's pve-root-ca.pem): the pveproxy
 * stand-in proxies /api2/json to the pvedaemon one, which logs in through
 * the node's real PAM stack, runs Proxmox's TFA challenge flow against
 * /etc/pve/priv/tfa.cfg, checks API tokens and permissions, and logs every
 * failed login to the journal as Proxmox does (pvedaemon, priority err,
 * "authentication failure; rhost=::ffff:ADDR user=USER msg=REASON").
 *
 * Everything this file creates (a Linux user, Proxmox users, tokens, TFA
 * entries) is removed at the end: later test files share the node.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Secret, TOTP } from 'otpauth';
import { apiCall, labOrSkip, sh, waitUntil, type ApiAnswer } from './helpers.ts';
import type { Lab } from './lab.ts';

const lab = await labOrSkip();

type Res = ApiAnswer;

const PAM_USER = 'tfauser';
const PAM_PASSWORD = 'lab-Tfa-pw-83';
const TOK_USER = 'tokuser@pve';

if (lab) {
  const node: Lab = lab;

  /** One HTTPS call from the workstation side, the node's certificate pinned (helpers.ts apiCall). */
  const api = (method: string, path: string, opts: { form?: Record<string, string>; ticket?: string; csrf?: string; token?: string } = {}): Promise<Res> => apiCall(node, method, path, opts);

  const login = (form: Record<string, string>) => api('POST', '/access/ticket', { form });
  const data = <T>(r: Res) => r.json?.data as T;

  /** pvedaemon's err-priority journal entries since `since` (epoch s) */
  async function pvedaemonErrors(since: number): Promise<{ MESSAGE: string; PRIORITY: string; _SYSTEMD_UNIT: string; SYSLOG_IDENTIFIER: string }[]> {
    const out = await sh(node, `journalctl -u pvedaemon.service -p err -o json --no-pager --since @${since - 1}`);
    return out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { MESSAGE: string; PRIORITY: string; _SYSTEMD_UNIT: string; SYSLOG_IDENTIFIER: string });
  }

  async function expectLogged(since: number, message: string): Promise<void> {
    await waitUntil(async () => (await pvedaemonErrors(since)).some((e) => e.MESSAGE === message), `journal line "${message}"`, 10_000);
    const e = (await pvedaemonErrors(since)).find((x) => x.MESSAGE === message)!;
    assert.equal(e.PRIORITY, '3', 'priority err');
    assert.equal(e._SYSTEMD_UNIT, 'pvedaemon.service');
    assert.equal(e.SYSLOG_IDENTIFIER, 'pvedaemon');
  }

  // a node booted just now: pveproxy comes up a moment after sshd
  await waitUntil(async () => (await node.tcpProbe(8006, { timeoutMs: 800 })) === 'connected', 'pveproxy listening on 8006', 30_000);

  const nowS = () => Math.floor(Date.now() / 1000);
  const RHOST = `::ffff:${node.workstationAddress}`;

  after(async () => {
    await node.exec(['pveum', 'user', 'tfa', 'delete', `${PAM_USER}@pam`]);
    await node.exec(['pveum', 'user', 'delete', `${PAM_USER}@pam`]);
    await node.exec(['pveum', 'user', 'delete', TOK_USER]);
    await node.exec(['userdel', '-r', PAM_USER]);
    await node.exec(['rm', '-f', `/etc/pve/nodes/${node.hostname}/config`]); // written by the PUT below
  });

  test('pveproxy answers HTTPS on 8006 with the node certificate; without a ticket the API says 401 No ticket', async () => {
    const r = await api('GET', '/version');
    assert.equal(r.status, 401);
    assert.equal(r.reason, 'No ticket');
    const log = await sh(node, 'tail -n 5 /var/log/pveproxy/access.log');
    assert.match(log, new RegExp(`^${RHOST.replace(/\./g, '\\.')} - - \\[[^\\]]+\\] "GET /api2/json/version HTTP/1.1" 401 \\d+$`, 'm'));
  });

  test("root@pam logs in with the lab's root password through PAM; the ticket opens the API", async () => {
    const r = await login({ username: 'root@pam', password: node.rootPassword });
    assert.equal(r.status, 200, r.reason);
    const d = data<{ ticket: string; username: string; CSRFPreventionToken: string; NeedTFA?: number }>(r);
    assert.equal(d.username, 'root@pam');
    assert.match(d.ticket, /^PVE:root@pam:[0-9A-F]{8}::/);
    assert.equal(d.NeedTFA, undefined);
    const v = await api('GET', '/version', { ticket: d.ticket });
    assert.equal(v.status, 200);
    assert.match(data<{ version: string }>(v).version, /^9\./);
    // a ticket from someone else's key is refused
    const forged = d.ticket.replace(/::.*$/, '::AAAA');
    assert.equal((await api('GET', '/version', { ticket: forged })).status, 401);
    // realm as its own parameter
    assert.equal((await login({ username: 'root', realm: 'pam', password: node.rootPassword })).status, 200);
    const log = await sh(node, 'tail -n 20 /var/log/pveproxy/access.log');
    assert.match(log, / - root@pam \[[^\]]+\] "GET \/api2\/json\/version HTTP\/1.1" 200 \d+$/m);
  });

  test('a wrong password: 401 "authentication failure", logged by pvedaemon at priority err with the workstation address', async () => {
    const since = nowS();
    const r = await login({ username: 'root@pam', password: 'not-the-password' });
    assert.equal(r.status, 401);
    assert.equal(r.reason, 'authentication failure');
    await expectLogged(since, `authentication failure; rhost=${RHOST} user=root@pam msg=Authentication failure`);
    // an unknown user fails the same way outwardly, the reason only in the log
    const u = await login({ username: 'nobody@pam', password: 'x' });
    assert.equal(u.status, 401);
    await expectLogged(since, `authentication failure; rhost=${RHOST} user=nobody@pam msg=no such user ('nobody@pam')`);
  });

  // a PAM user with TOTP registered through pvesh, as the two-factor step would do it
  const secret = new Secret({ size: 20 });
  const totp = new TOTP({ secret, digits: 6, period: 30, algorithm: 'SHA1' });
  const uri = `otpauth://totp/Proxmox%20VE:${PAM_USER}%40pam?secret=${secret.base32}&digits=6&algorithm=SHA1&period=30&issuer=Proxmox%20VE`;
  const codeAt = (offsetSteps: number) => totp.generate({ timestamp: Date.now() + offsetSteps * 30_000 });

  async function challenge(): Promise<string> {
    const r = await login({ username: `${PAM_USER}@pam`, password: PAM_PASSWORD });
    assert.equal(r.status, 200, r.reason);
    const d = data<{ ticket: string; NeedTFA?: number; username: string }>(r);
    assert.equal(d.NeedTFA, 1);
    assert.match(d.ticket, /^PVE:!tfa!/);
    return d.ticket;
  }
  const second = (ticket: string, password: string) => login({ username: `${PAM_USER}@pam`, 'tfa-challenge': ticket, password });

  test('TOTP registered with pvesh: description required, a bad URI refused, keys=x in user.cfg', async () => {
    await sh(node, `id ${PAM_USER} >/dev/null 2>&1 || useradd -m -s /bin/bash ${PAM_USER}`);
    const pw = await node.exec(['chpasswd'], { input: `${PAM_USER}:${PAM_PASSWORD}\n` });
    assert.equal(pw.exitCode, 0, pw.stderr);
    assert.equal((await node.exec(['pveum', 'user', 'add', `${PAM_USER}@pam`])).exitCode, 0);
    // no TFA yet: the password alone gives a full ticket
    const plain = await login({ username: `${PAM_USER}@pam`, password: PAM_PASSWORD });
    assert.equal(plain.status, 200);
    assert.match(data<{ ticket: string }>(plain).ticket, new RegExp(`^PVE:${PAM_USER}@pam:`));

    const noDesc = await node.exec(['pvesh', 'create', `/access/tfa/${PAM_USER}@pam`, '--type', 'totp', '--totp', uri, '--value', codeAt(0)]);
    assert.notEqual(noDesc.exitCode, 0);
    assert.match(noDesc.stderr, /'description' is required for new entries/);
    const badUri = await node.exec(['pvesh', 'create', `/access/tfa/${PAM_USER}@pam`, '--type', 'totp', '--description', 'phone', '--totp', `${uri}&image=x`, '--value', codeAt(0)]);
    assert.match(badUri.stderr, /unknown otpauth uri parameter: 'image'/);
    const badCode = await node.exec(['pvesh', 'create', `/access/tfa/${PAM_USER}@pam`, '--type', 'totp', '--description', 'phone', '--totp', uri, '--value', codeAt(-3)]);
    assert.match(badCode.stderr, /failed to verify TOTP challenge/);

    const add = await node.exec(['pvesh', 'create', `/access/tfa/${PAM_USER}@pam`, '--type', 'totp', '--description', 'phone', '--totp', uri, '--value', codeAt(0), '--output-format', 'json']);
    assert.equal(add.exitCode, 0, add.stderr);
    assert.match((JSON.parse(add.stdout) as { id: string }).id, /^[0-9a-f-]{36}$/);
    assert.match(await sh(node, 'cat /etc/pve/user.cfg'), new RegExp(`^user:${PAM_USER}@pam:1:0:::::x:$`, 'm'));
    const list = JSON.parse(await sh(node, `pvesh get /access/tfa/${PAM_USER}@pam --output-format json`)) as { type: string; description: string }[];
    assert.deepEqual(list.map((e) => [e.type, e.description]), [['totp', 'phone']]);
    const mode = await sh(node, 'stat -c %a:%U:%G /etc/pve/priv/tfa.cfg');
    assert.equal(mode.trim(), '600:root:www-data');
  });

  test('login with TOTP: NeedTFA, then totp:CODE passes; a wrong code and a reused one are refused and logged', async () => {
    const since = nowS();
    const wrong = await second(await challenge(), `totp:${codeAt(4)}`);
    assert.equal(wrong.status, 401);
    await expectLogged(since, `authentication failure; rhost=${RHOST} user=${PAM_USER}@pam msg=failed 2nd factor`);

    const code = codeAt(0);
    const ok = await second(await challenge(), `totp:${code}`);
    assert.equal(ok.status, 200, ok.reason);
    const d = data<{ ticket: string; username: string; NeedTFA?: number }>(ok);
    assert.match(d.ticket, new RegExp(`^PVE:${PAM_USER}@pam:`));
    assert.equal(d.NeedTFA, undefined);
    assert.equal((await api('GET', '/version', { ticket: d.ticket })).status, 200);

    const again = await second(await challenge(), `totp:${code}`);
    assert.equal(again.status, 401, 'the same step twice');
    await expectLogged(since, `error in 2nd factor authentication for user '${PAM_USER}@pam': rejecting reused TOTP value`);

    // the half ticket opens nothing
    assert.equal((await api('GET', '/version', { ticket: await challenge() })).status, 401);
  });

  test('recovery keys: ten, shown once; each works once only', async () => {
    const r = await node.exec(['pvesh', 'create', `/access/tfa/${PAM_USER}@pam`, '--type', 'recovery', '--output-format', 'json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const keys = (JSON.parse(r.stdout) as { id: string; recovery: string[] }).recovery;
    assert.equal(keys.length, 10);
    for (const k of keys) assert.match(k, /^[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}$/);
    const again = await node.exec(['pvesh', 'create', `/access/tfa/${PAM_USER}@pam`, '--type', 'recovery']);
    assert.match(again.stderr, /user already has recovery keys/);
    assert.ok(!(await sh(node, 'cat /etc/pve/priv/tfa.cfg')).includes(keys[0]!), 'stored hashed');

    assert.equal((await second(await challenge(), `recovery:${keys[2]}`)).status, 200);
    assert.equal((await second(await challenge(), `recovery:${keys[2]}`)).status, 401, 'used up');
    assert.equal((await second(await challenge(), `recovery:${keys[5]}`)).status, 200);
  });

  test('8 wrong codes lock TOTP (the right one is refused then); pveum user tfa unlock clears it', async () => {
    for (let i = 0; i < 8; i++) assert.equal((await second(await challenge(), 'totp:000000')).status, 401);
    const listed = JSON.parse(await sh(node, 'pvesh get /access/tfa --output-format json')) as { userid: string; 'totp-locked'?: boolean }[];
    assert.equal(listed.find((u) => u.userid === `${PAM_USER}@pam`)?.['totp-locked'], true);
    assert.match(await sh(node, 'cat /etc/pve/priv/tfa.cfg'), /"totp-locked":true/);
    const since = nowS();
    assert.equal((await second(await challenge(), `totp:${codeAt(1)}`)).status, 401, 'locked');
    await expectLogged(since, `TOTP of user '${PAM_USER}@pam' is locked`);

    const unlock = await node.exec(['pveum', 'user', 'tfa', 'unlock', `${PAM_USER}@pam`]);
    assert.equal(unlock.exitCode, 0, unlock.stderr);
    assert.doesNotMatch(await sh(node, 'cat /etc/pve/priv/tfa.cfg'), /totp-locked/);
    assert.equal((await second(await challenge(), `totp:${codeAt(1)}`)).status, 200, 'unlocked');

    // pveum's own listing
    const text = await sh(node, `pveum user tfa list ${PAM_USER}@pam`);
    assert.match(text, /^recovery: recovery\n/m);
    assert.match(text, /^totp: {5}[0-9a-f-]{36}\n {4}phone$/m);
  });

  test('API tokens: privilege separation through ACLs, 403 on a write, expired token refused', async () => {
    await sh(node, `pveum user add ${TOK_USER} && pveum acl modify /nodes --users ${TOK_USER} --roles PVEAuditor`);
    const add = JSON.parse(await sh(node, `pveum user token add ${TOK_USER} mon --privsep 1 --output-format json`)) as { 'full-tokenid': string; value: string };
    await sh(node, `pveum acl modify /nodes --tokens '${TOK_USER}!mon' --roles PVEAuditor`);
    const token = `${add['full-tokenid']}=${add.value}`;

    const nodes = await api('GET', '/nodes', { token });
    assert.equal(nodes.status, 200, nodes.reason);
    assert.deepEqual(data<{ node: string }[]>(nodes).map((n) => n.node), [node.hostname]);
    const perms = data<Record<string, Record<string, number>>>(await api('GET', '/access/permissions', { token }));
    assert.equal(perms['/nodes']?.['Sys.Audit'], 1);
    assert.equal(perms['/nodes']?.['Sys.Modify'], undefined);
    const res = data<{ type: string }[]>(await api('GET', '/cluster/resources', { token }));
    assert.ok(res.some((x) => x.type === 'node'));

    const write = await api('PUT', `/nodes/${node.hostname}/config`, { token, form: { description: 'from a token' } });
    assert.equal(write.status, 403);
    assert.equal(write.reason, `Permission check failed (/nodes/${node.hostname}, Sys.Modify)`);
    // root can (ticket + CSRF token)
    const root = data<{ ticket: string; CSRFPreventionToken: string }>(await login({ username: 'root@pam', password: node.rootPassword }));
    assert.equal((await api('PUT', `/nodes/${node.hostname}/config`, { ticket: root.ticket, form: { description: 'x' } })).status, 401, 'no CSRF token');
    assert.equal((await api('PUT', `/nodes/${node.hostname}/config`, { ticket: root.ticket, csrf: root.CSRFPreventionToken, form: { description: 'x' } })).status, 200);

    const bad = await api('GET', '/nodes', { token: `${add['full-tokenid']}=00000000-0000-0000-0000-000000000000` });
    assert.equal(bad.status, 401);
    assert.equal(bad.reason, 'Authentication failed!');

    const old = JSON.parse(await sh(node, `pveum user token add ${TOK_USER} old --privsep 0 --expire ${nowS() - 60} --output-format json`)) as { 'full-tokenid': string; value: string };
    const expired = await api('GET', '/nodes', { token: `${old['full-tokenid']}=${old.value}` });
    assert.equal(expired.status, 401);
    assert.match(await sh(node, "journalctl -u pvedaemon.service -o cat --no-pager -n 20"), /authentication failure: token 'old' access expired/);
    await sh(node, `pveum user token delete ${TOK_USER} old`);
    assert.equal((await api('GET', '/nodes', { token })).status, 200, 'the good token still works');
  });
}
