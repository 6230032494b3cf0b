/**
 * Who the new sshd settings let in (src/ssh/sshd-access.ts): installed keys
 * against PubkeyAcceptedAlgorithms and RequiredRSASize, AllowUsers /
 * DenyUsers / AllowGroups / DenyGroups / PubkeyAuthentication /
 * AuthenticationMethods from `sshd -T -C` output, and the address helpers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, readCheckedKeys, type PublicKey } from '../../src/ssh/keys.ts';
import { intentSettings, parseSshdT, type SshdIntent } from '../../src/ssh/sshd.ts';
import { addressMatches, admissionProblem, hostIn, inNetwork, keyRefusal, networkOf, networkProblem } from '../../src/ssh/sshd-access.ts';
import { SUPPORTED_92, SUPPORTED_10 } from '../fixtures/openssh.ts';


const INTENT: SshdIntent = { admins: ['alice'], allow: { mode: 'users', names: [] }, root: 'prohibit-password', profile: 'compatible' };
const compatible = intentSettings(INTENT, SUPPORTED_92);
const strict = intentSettings({ ...INTENT, profile: 'strict' }, SUPPORTED_92);
const compatible10 = intentSettings(INTENT, SUPPORTED_10);
const strict10 = intentSettings({ ...INTENT, profile: 'strict' }, SUPPORTED_10);

async function keyOf(type: 'ed25519' | 'ecdsa' | 'rsa', bits?: number): Promise<PublicKey> {
  const pair = await generateKeyPair(type, { ...(bits ? { bits } : {}), comment: `op-${type}` });
  const keys = readCheckedKeys(pair.public);
  assert.equal(keys.length, 1);
  return keys[0]!;
}

const ed25519 = await keyOf('ed25519');
const ecdsa = await keyOf('ecdsa', 256);
const rsa2048 = await keyOf('rsa', 2048);
const rsa3072 = await keyOf('rsa', 3072);

const valueOf = (settings: { keyword: string; value: string }[], keyword: string) => settings.find((s) => s.keyword === keyword)?.value;

// --- keyRefusal -------------------------------------------------------------

test('the generated keys are what the tests assume', () => {
  assert.deepEqual(
    [ed25519, ecdsa, rsa2048, rsa3072].map((k) => [k.type, k.family, k.bits]),
    [
      ['ssh-ed25519', 'ed25519', 256],
      ['ecdsa-sha2-nistp256', 'ecdsa', 256],
      ['ssh-rsa', 'rsa', 2048],
      ['ssh-rsa', 'rsa', 3072],
    ],
  );
  // The fixture's settings: strict drops ECDSA and ssh-rsa, RequiredRSASize differs by profile.
  assert.equal(valueOf(strict, 'RequiredRSASize'), '3072');
  assert.equal(valueOf(compatible, 'RequiredRSASize'), '2048');
  assert.doesNotMatch(valueOf(strict, 'PubkeyAcceptedAlgorithms')!, /ecdsa/);
  assert.match(valueOf(compatible, 'PubkeyAcceptedAlgorithms')!, /(^|,)ecdsa-sha2-nistp256(,|$)/);
  for (const s of [compatible, strict]) assert.ok(!valueOf(s, 'PubkeyAcceptedAlgorithms')!.split(',').includes('ssh-rsa'));
});

test('keyRefusal: ed25519 is accepted by the compatible and the strict settings (OpenSSH 9.2 and 10)', () => {
  for (const settings of [compatible, strict, compatible10, strict10]) assert.equal(keyRefusal(ed25519, settings), undefined);
});

test('keyRefusal: ecdsa is refused by strict (not in PubkeyAcceptedAlgorithms), accepted by compatible', () => {
  assert.equal(keyRefusal(ecdsa, strict), 'ecdsa-sha2-nistp256 keys are not in PubkeyAcceptedAlgorithms');
  assert.equal(keyRefusal(ecdsa, strict10), 'ecdsa-sha2-nistp256 keys are not in PubkeyAcceptedAlgorithms');
  assert.equal(keyRefusal(ecdsa, compatible), undefined);
  assert.equal(keyRefusal(ecdsa, compatible10), undefined);
});

test('keyRefusal: RSA 2048 is refused under RequiredRSASize 3072 and accepted under 2048; RSA 3072 passes both', () => {
  assert.equal(keyRefusal(rsa2048, strict), 'RequiredRSASize 3072 refuses an RSA key of 2048 bits');
  assert.equal(keyRefusal(rsa2048, strict10), 'RequiredRSASize 3072 refuses an RSA key of 2048 bits');
  assert.equal(keyRefusal(rsa2048, compatible), undefined);
  assert.equal(keyRefusal(rsa3072, strict), undefined);
  assert.equal(keyRefusal(rsa3072, compatible), undefined);
  // Hand-made settings: the size alone decides.
  assert.equal(keyRefusal(rsa2048, [{ keyword: 'RequiredRSASize', value: '3072' }]), 'RequiredRSASize 3072 refuses an RSA key of 2048 bits');
  assert.equal(keyRefusal(rsa2048, [{ keyword: 'RequiredRSASize', value: '2048' }]), undefined);
  assert.equal(keyRefusal(rsa3072, [{ keyword: 'RequiredRSASize', value: '4096' }]), 'RequiredRSASize 4096 refuses an RSA key of 3072 bits');
  // RequiredRSASize is about RSA only.
  assert.equal(keyRefusal(ed25519, [{ keyword: 'RequiredRSASize', value: '4096' }]), undefined);
});

test('keyRefusal: an ssh-rsa key is accepted through the rsa-sha2-512/256 signature names, not ssh-rsa itself', () => {
  assert.equal(keyRefusal(rsa3072, [{ keyword: 'PubkeyAcceptedAlgorithms', value: 'rsa-sha2-512' }]), undefined);
  assert.equal(keyRefusal(rsa3072, [{ keyword: 'PubkeyAcceptedAlgorithms', value: 'ssh-ed25519,rsa-sha2-256' }]), undefined);
  assert.equal(keyRefusal(rsa3072, [{ keyword: 'PubkeyAcceptedAlgorithms', value: 'ssh-ed25519' }]), 'ssh-rsa keys are not in PubkeyAcceptedAlgorithms');
  // The other families are not helped by the RSA names.
  assert.equal(keyRefusal(ed25519, [{ keyword: 'PubkeyAcceptedAlgorithms', value: 'rsa-sha2-512,rsa-sha2-256' }]), 'ssh-ed25519 keys are not in PubkeyAcceptedAlgorithms');
});

test('keyRefusal: Match settings and missing keywords do not refuse', () => {
  assert.equal(keyRefusal(ecdsa, []), undefined);
  assert.equal(keyRefusal(rsa2048, [{ keyword: 'RequiredRSASize', value: '3072', match: 'Address 10.0.0.0/24' }]), undefined);
  assert.equal(keyRefusal(ecdsa, [{ keyword: 'PubkeyAcceptedAlgorithms', value: 'ssh-ed25519', match: 'User bob' }]), undefined);
});

// --- admissionProblem -------------------------------------------------------

const BASE_T = 'port 22\npubkeyauthentication yes\npasswordauthentication no\nauthenticationmethods any\n';
const eff = (extra: string) => parseSshdT(`${BASE_T}${extra}`);
const GROUPS = ['alice', 'sudo'];

test('admissionProblem: nothing restricting is fine', () => {
  assert.equal(admissionProblem(eff(''), 'alice', GROUPS, '192.0.2.10'), undefined);
});

test('admissionProblem: AllowUsers including or excluding the user', () => {
  assert.equal(admissionProblem(eff('allowusers alice root\n'), 'alice', GROUPS, '192.0.2.10'), undefined);
  assert.equal(admissionProblem(eff('allowusers bob root\n'), 'alice', GROUPS, '192.0.2.10'), 'AllowUsers bob root does not include alice from 192.0.2.10');
  // Accumulated over several sshd -T lines.
  assert.equal(admissionProblem(eff('allowusers bob\nallowusers alice\n'), 'alice', GROUPS, '192.0.2.10'), undefined);
  // Wildcards.
  assert.equal(admissionProblem(eff('allowusers al*\n'), 'alice', GROUPS, '192.0.2.10'), undefined);
  assert.equal(admissionProblem(eff('allowusers b?b\n'), 'alice', GROUPS, '192.0.2.10'), 'AllowUsers b?b does not include alice from 192.0.2.10');
});

test('admissionProblem: AllowUsers user@10.0.0.0/8 is matched by address', () => {
  const e = eff('allowusers alice@10.0.0.0/8 root\n');
  assert.equal(admissionProblem(e, 'alice', GROUPS, '10.20.30.40'), undefined);
  assert.equal(admissionProblem(e, 'alice', GROUPS, '11.0.0.1'), 'AllowUsers alice@10.0.0.0/8 root does not include alice from 11.0.0.1');
  assert.equal(admissionProblem(e, 'alice', GROUPS, '192.0.2.10'), 'AllowUsers alice@10.0.0.0/8 root does not include alice from 192.0.2.10');
  // The address part does not admit another user.
  assert.equal(admissionProblem(e, 'bob', ['bob'], '10.0.0.1'), 'AllowUsers alice@10.0.0.0/8 root does not include bob from 10.0.0.1');
});

test('admissionProblem: DenyUsers refuses, before AllowUsers is looked at', () => {
  assert.equal(admissionProblem(eff('denyusers alice\n'), 'alice', GROUPS, '192.0.2.10'), 'DenyUsers alice refuses alice');
  assert.equal(admissionProblem(eff('denyusers bob\n'), 'alice', GROUPS, '192.0.2.10'), undefined);
  assert.equal(admissionProblem(eff('denyusers bob a*\nallowusers alice\n'), 'alice', GROUPS, '192.0.2.10'), 'DenyUsers a* refuses alice');
  // user@network: only from inside the network.
  assert.equal(admissionProblem(eff('denyusers alice@10.0.0.0/8\n'), 'alice', GROUPS, '10.1.1.1'), 'DenyUsers alice@10.0.0.0/8 refuses alice');
  assert.equal(admissionProblem(eff('denyusers alice@10.0.0.0/8\n'), 'alice', GROUPS, '192.0.2.10'), undefined);
});

test('admissionProblem: AllowGroups with and without one of the user\'s groups', () => {
  assert.equal(admissionProblem(eff('allowgroups sudo root\n'), 'alice', GROUPS, '192.0.2.10'), undefined);
  assert.equal(
    admissionProblem(eff('allowgroups sshusers root\n'), 'alice', GROUPS, '192.0.2.10'),
    'AllowGroups sshusers root does not include any group of alice (alice, sudo)',
  );
  assert.equal(admissionProblem(eff('allowgroups sshusers\n'), 'alice', [], '192.0.2.10'), 'AllowGroups sshusers does not include any group of alice (none)');
});

test('admissionProblem: DenyGroups refuses a member', () => {
  assert.equal(admissionProblem(eff('denygroups sudo\n'), 'alice', GROUPS, '192.0.2.10'), 'DenyGroups sudo refuses alice (member of sudo)');
  assert.equal(admissionProblem(eff('denygroups wheel\n'), 'alice', GROUPS, '192.0.2.10'), undefined);
  // DenyGroups comes before AllowGroups.
  assert.equal(admissionProblem(eff('denygroups sudo\nallowgroups sudo\n'), 'alice', GROUPS, '192.0.2.10'), 'DenyGroups sudo refuses alice (member of sudo)');
});

test('admissionProblem: PubkeyAuthentication no', () => {
  assert.equal(admissionProblem(parseSshdT('pubkeyauthentication no\n'), 'alice', GROUPS, '192.0.2.10'), 'PubkeyAuthentication is no');
  assert.equal(admissionProblem(parseSshdT('pubkeyauthentication yes\n'), 'alice', GROUPS, '192.0.2.10'), undefined);
});

test('admissionProblem: AuthenticationMethods publickey, password, any', () => {
  const withMethods = (m: string) => parseSshdT(`pubkeyauthentication yes\nauthenticationmethods ${m}\n`);
  assert.equal(admissionProblem(withMethods('publickey'), 'alice', GROUPS, '192.0.2.10'), undefined);
  assert.equal(admissionProblem(withMethods('any'), 'alice', GROUPS, '192.0.2.10'), undefined);
  assert.equal(admissionProblem(withMethods('password'), 'alice', GROUPS, '192.0.2.10'), 'AuthenticationMethods password cannot start with publickey');
  assert.equal(admissionProblem(withMethods('publickey,password'), 'alice', GROUPS, '192.0.2.10'), undefined);
  assert.equal(
    admissionProblem(withMethods('password,publickey keyboard-interactive'), 'alice', GROUPS, '192.0.2.10'),
    'AuthenticationMethods password,publickey keyboard-interactive cannot start with publickey',
  );
  assert.equal(admissionProblem(withMethods('password publickey'), 'alice', GROUPS, '192.0.2.10'), undefined);
});

// --- addresses --------------------------------------------------------------

test('inNetwork: IPv4 inside and outside, /32, /0, a plain address, IPv6 by equality', () => {
  assert.equal(inNetwork('10.1.2.3', '10.0.0.0/8'), true);
  assert.equal(inNetwork('11.1.2.3', '10.0.0.0/8'), false);
  assert.equal(inNetwork('192.0.2.255', '192.0.2.0/24'), true);
  assert.equal(inNetwork('192.0.3.0', '192.0.2.0/24'), false);
  assert.equal(inNetwork('192.0.2.7', '192.0.2.7/32'), true);
  assert.equal(inNetwork('192.0.2.8', '192.0.2.7/32'), false);
  assert.equal(inNetwork('192.0.2.7', '192.0.2.7'), true);
  assert.equal(inNetwork('192.0.2.8', '192.0.2.7'), false);
  assert.equal(inNetwork('203.0.113.9', '0.0.0.0/0'), true);
  assert.equal(inNetwork('fd00::', 'fd00::/64'), true);
  assert.equal(inNetwork('fd00::1', 'fd00::/64'), false);
  assert.equal(inNetwork('not-an-ip', '10.0.0.0/8'), false);
});

test('networkOf: the network an interface address is in', () => {
  assert.equal(networkOf('10.77.7.2/24'), '10.77.7.0/24');
  assert.equal(networkOf('172.16.5.4/12'), '172.16.0.0/12');
  assert.equal(networkOf('192.0.2.10/32'), '192.0.2.10/32');
  assert.equal(networkOf('192.0.2.10'), '192.0.2.10/32');
  assert.equal(networkOf('10.1.2.3/0'), '0.0.0.0/0');
  assert.equal(networkOf('fd00::1/64'), 'fd00::1/64');
});

test('networkProblem: networks and addresses accepted; host bits, bad prefixes and garbage refused', () => {
  assert.equal(networkProblem('10.0.0.0/24'), undefined);
  assert.equal(networkProblem('192.0.2.7'), undefined);
  assert.equal(networkProblem('0.0.0.0/0'), undefined);
  assert.equal(networkProblem('fd00::/64'), undefined);
  assert.equal(networkProblem('fd00::1'), undefined);
  assert.equal(networkProblem('10.0.0.1/24'), '"10.0.0.1/24" has host bits set: the network is 10.0.0.0/24');
  assert.equal(networkProblem('10.0.0.0/0'), '"10.0.0.0/0" has host bits set: the network is 0.0.0.0/0');
  assert.equal(networkProblem('10.0.0.0/33'), '"10.0.0.0/33": the prefix must be a number from 0 to 32');
  assert.equal(networkProblem('10.0.0.0/'), '"10.0.0.0/": the prefix must be a number from 0 to 32');
  assert.equal(networkProblem('10.0.0.0/x'), '"10.0.0.0/x": the prefix must be a number from 0 to 32');
  assert.equal(networkProblem('fd00::/129'), '"fd00::/129": the prefix must be a number from 0 to 128');
  assert.equal(networkProblem('garbage'), '"garbage" is not an address or a network (wanted e.g. 10.0.0.0/24)');
  assert.equal(networkProblem('10.0.0/24'), '"10.0.0/24" is not an address or a network (wanted e.g. 10.0.0.0/24)');
  assert.equal(networkProblem('10.0.0.0/8/8'), '"10.0.0.0/8/8" is not an address or a network (wanted e.g. 10.0.0.0/24)');
  assert.equal(networkProblem('256.0.0.0/8'), '"256.0.0.0/8" is not an address or a network (wanted e.g. 10.0.0.0/24)');
});

test('hostIn: the first host of a network; an address is itself', () => {
  assert.equal(hostIn('10.0.0.0/24'), '10.0.0.1');
  assert.equal(hostIn('10.0.0.0/8'), '10.0.0.1');
  assert.equal(hostIn('192.0.2.7/32'), '192.0.2.7');
  assert.equal(hostIn('192.0.2.7'), '192.0.2.7');
  assert.equal(hostIn('fd00::/64'), 'fd00::');
  assert.ok(inNetwork(hostIn('192.168.10.0/24'), '192.168.10.0/24'));
});

test('addressMatches: CIDR networks and wildcard patterns', () => {
  assert.equal(addressMatches('10.0.0.0/8', '10.200.0.1'), true);
  assert.equal(addressMatches('10.0.0.0/8', '11.0.0.1'), false);
  assert.equal(addressMatches('192.0.2.0/24', '192.0.2.10'), true);
  assert.equal(addressMatches('10.0.0.*', '10.0.0.77'), true);
  assert.equal(addressMatches('10.0.0.*', '10.0.1.77'), false);
  assert.equal(addressMatches('192.0.2.?', '192.0.2.5'), true);
  assert.equal(addressMatches('192.0.2.?', '192.0.2.50'), false);
  assert.equal(addressMatches('*', '203.0.113.1'), true);
  assert.equal(addressMatches('192.0.2.10', '192.0.2.10'), true);
  // A dot is a dot, not "any character".
  assert.equal(addressMatches('192.0.2.10', '192x0x2x10'), false);
});

test('admissionProblem: user and group names match case-sensitively, as sshd does (only hosts ignore case)', () => {
  assert.equal(admissionProblem(eff('allowusers ALICE\n'), 'alice', GROUPS, '192.0.2.10'), 'AllowUsers ALICE does not include alice from 192.0.2.10');
  assert.equal(admissionProblem(eff('allowgroups SUDO\n'), 'alice', ['alice', 'sudo'], '192.0.2.10'), 'AllowGroups SUDO does not include any group of alice (alice, sudo)');
  assert.equal(admissionProblem(eff('allowusers alice@NODE*\n'), 'alice', GROUPS, 'node1'), undefined);
});

test('addressMatches: a comma list in the host part matches when any entry does', () => {
  assert.equal(addressMatches('10.0.0.0/8,192.0.2.0/24', '192.0.2.10'), true);
  assert.equal(addressMatches('10.0.0.0/8,192.0.2.0/24', '198.51.100.1'), false);
  assert.equal(admissionProblem(eff('allowusers alice@10.0.0.0/8,192.0.2.0/24\n'), 'alice', GROUPS, '192.0.2.10'), undefined);
});

test('networkProblem: a prefix with a leading zero is a format problem, not host bits', () => {
  assert.equal(networkProblem('10.0.0.0/08'), '"10.0.0.0/08": the prefix must be a number from 0 to 32');
});
