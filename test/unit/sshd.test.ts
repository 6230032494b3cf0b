/**
 * The sshd settings model (issue 5): intent -> settings -> drop-in, crypto
 * lists intersected with the installed OpenSSH, `sshd -T` parsing,
 * intent-vs-effective comparison and "which file wins".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Exec, ExecResult } from '../../src/system/exec.ts';
import {
  compareIntent,
  describeWinner,
  intentSettings,
  parseSshdT,
  readConfigFiles,
  readEffective,
  renderDropIn,
  validateIntent,
  whoWins,
  type SshdIntent,
} from '../../src/ssh/sshd.ts';
import { cryptoLists, parseOpenSshVersion, readSupported, type SupportedAlgorithms } from '../../src/ssh/sshd-crypto.ts';
import { Q92, SUPPORTED_92, V92 } from '../fixtures/openssh.ts';

const SSHD_T_DEBIAN13 = `port 22
addressfamily any
listenaddress [::]:22
listenaddress 0.0.0.0:22
usepam yes
pamservicename sshd
logingracetime 120
x11displayoffset 10
maxauthtries 6
maxsessions 10
clientaliveinterval 0
clientalivecountmax 3
requiredrsasize 1024
streamlocalbindmask 0177
unusedconnectiontimeout none
permitrootlogin yes
ignorerhosts yes
ignoreuserknownhosts no
hostbasedauthentication no
hostbasedusesnamefrompacketonly no
pubkeyauthentication yes
kerberosauthentication no
kerberosorlocalpasswd yes
kerberosticketcleanup yes
gssapiauthentication no
gssapicleanupcredentials yes
gssapikeyexchange no
gssapistrictacceptorcheck yes
gssapistorecredentialsonrekey no
gssapikexalgorithms gss-group14-sha256-,gss-group16-sha512-,gss-nistp256-sha256-,gss-curve25519-sha256-,gss-group14-sha1-,gss-gex-sha1-
passwordauthentication yes
kbdinteractiveauthentication no
printmotd no
printlastlog yes
x11forwarding yes
x11uselocalhost yes
permittty yes
permituserrc yes
strictmodes yes
tcpkeepalive yes
permitemptypasswords no
compression yes
gatewayports no
usedns no
allowtcpforwarding yes
allowagentforwarding yes
disableforwarding no
allowstreamlocalforwarding yes
streamlocalbindunlink no
fingerprinthash SHA256
exposeauthinfo no
refuseconnection no
debianbanner yes
pidfile /run/sshd.pid
modulifile /etc/ssh/moduli
xauthlocation /usr/bin/xauth
ciphers chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr
macs umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1
banner none
forcecommand none
chrootdirectory none
trustedusercakeys none
revokedkeys none
securitykeyprovider internal
authorizedprincipalsfile none
versionaddendum none
authorizedkeyscommand none
authorizedkeyscommanduser none
authorizedprincipalscommand none
authorizedprincipalscommanduser none
hostkeyagent none
kexalgorithms mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521
casignaturealgorithms ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
hostbasedacceptedalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
hostkeyalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
pubkeyacceptedalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
sshdsessionpath /usr/lib/openssh/sshd-session
sshdauthpath /usr/lib/openssh/sshd-auth
persourcepenaltyexemptlist none
loglevel INFO
syslogfacility AUTH
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
hostkey /etc/ssh/ssh_host_rsa_key
hostkey /etc/ssh/ssh_host_ecdsa_key
hostkey /etc/ssh/ssh_host_ed25519_key
acceptenv LANG
acceptenv LC_*
acceptenv COLORTERM
acceptenv NO_COLOR
authenticationmethods any
channeltimeout none
subsystem sftp /usr/lib/openssh/sftp-server
maxstartups 10:30:100
persourcemaxstartups none
persourcenetblocksize 32:128
permittunnel no
ipqos ef cs1
rekeylimit 0 0
permitopen any
permitlisten any
permituserenvironment no
pubkeyauthoptions none
persourcepenalties crash:90 authfail:5 noauth:1 grace-exceeded:10 refuseconnection:10 max:600 min:15 max-sources4:65536 max-sources6:65536 overflow:permissive overflow6:permissive
`;

const USERS_PROHIBIT: SshdIntent = { admins: ['alice'], allow: { mode: 'users', names: ['bob'] }, root: 'prohibit-password', profile: 'compatible' };
const GROUPS_MATCH: SshdIntent = {
  admins: ['alice'],
  allow: { mode: 'groups', names: ['sudo'] },
  root: { no: true, matchAddresses: ['10.0.0.0/24', '192.168.10.0/24'] },
  profile: 'strict',
};

const EXPECTED_USERS_PROHIBIT = `# Managed by pve-baseline (sshd hardening). Change it through pve-baseline:
# a hand edit is reported as drift and reverted by "pve-baseline revert".
#
# Why "00-": for most keywords sshd keeps the FIRST value it reads. Debian's
# /etc/ssh/sshd_config begins with "Include /etc/ssh/sshd_config.d/*.conf", so
# drop-ins are read before the main file's own settings, in lexical order;
# 00- puts this file ahead of the others (e.g. cloud-init's 50-cloud-init.conf,
# which sets PasswordAuthentication yes). A file that sorts before this one
# would win; pve-baseline compares "sshd -T" with these values before every
# reload and names the file that wins.
#
# Match blocks come last: a Match block lasts until the next Match or the end
# of the file, so a global setting after one would apply to the match only.
# Profile: compatible.

# Public-key authentication is the one way in.
PubkeyAuthentication yes

# No passwords over SSH: they can be guessed, phished and reused; keys cannot.
PasswordAuthentication no

# No keyboard-interactive (PAM) prompts either: that is a password login by
# another name.
KbdInteractiveAuthentication no

# An account without a password never logs in over SSH.
PermitEmptyPasswords no

# Only a public key completes authentication, even if another file re-enables
# passwords.
AuthenticationMethods publickey

# root may log in with a key only, never with a password.
# Proxmox: Not "no": clusters need root SSH between nodes (migration,
# replication, pvecm, the web shell on other nodes).
PermitRootLogin prohibit-password

# Only these accounts may log in; every other account is refused before
# authentication.
# Proxmox: root stays allowed (with keys only): clusters need root SSH between
# nodes (migration, replication, pvecm).
AllowUsers alice bob root

# At most 3 authentication attempts per connection (Lynis: 3 or fewer is
# good).
# Proxmox: A client offering many agent keys may hit the limit before the
# right one: use IdentitiesOnly or -i. Cluster SSH uses one key.
MaxAuthTries 3

# An unauthenticated connection is dropped after 30 seconds (default 120), so
# half-open logins cannot pile up.
LoginGraceTime 30

# sshd checks an idle client every 300 seconds (Lynis: 300 or less is good).
ClientAliveInterval 300

# A client that misses 2 checks is disconnected: dead sessions end after 10
# minutes; live idle ones stay.
ClientAliveCountMax 2

# No X11 forwarding: a server has no display, and a forwarded X server exposes
# the client.
X11Forwarding no

# No agent forwarding: root on this node could use a forwarded agent to log in
# anywhere as you. Use ProxyJump instead.
AllowAgentForwarding no

# Users cannot set environment variables (LD_PRELOAD, ...) through
# ~/.ssh/environment.
PermitUserEnvironment no

# VERBOSE logs the fingerprint of the key used for each login: the audit trail
# names the key, not only the account.
LogLevel VERBOSE

# AllowTcpForwarding is not set here: left at the default (yes).
# Proxmox: Live migration and tools that tunnel VNC/SPICE through SSH need TCP
# forwarding; "no" breaks them.

# DisableForwarding is not set here: left at the default (no).
# Proxmox: DisableForwarding yes (CIS) also disables TCP forwarding and breaks
# SSH-tunnelled live migration.

# Post-quantum hybrids first, then curve25519 and large finite-field groups
# (ssh-audit Debian 12 v3); no SHA-1, no NIST curves, no 2048-bit group14.
# Proxmox: All Proxmox VE 8/9 nodes negotiate sntrup761 or mlkem with each
# other; curve25519 stays for older clients.
KexAlgorithms sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256

# Authenticated encryption (ChaCha20-Poly1305, AES-GCM) and AES-CTR only; no
# CBC, no 3DES.
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-gcm@openssh.com,aes128-ctr

# Encrypt-then-MAC with SHA-2 or UMAC-128 only; no SHA-1, no 64-bit tags, no
# encrypt-and-MAC.
MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com

# Host keys signed with Ed25519 or RSA/SHA-2 only: no ssh-rsa (SHA-1), no
# ECDSA (NIST curves).
# Proxmox: The node's RSA host key stays offered (rsa-sha2-512/256): cluster
# peers pin it in /etc/ssh/ssh_known_hosts. Host keys are not regenerated.
HostKeyAlgorithms sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256

# User keys: Ed25519, ECDSA and their FIDO (sk-) variants, RSA with SHA-2;
# ssh-rsa (SHA-1) signatures are refused.
# Proxmox: Root's cluster key is RSA (/root/.ssh/id_rsa); it keeps working
# with rsa-sha2-512/256.
PubkeyAcceptedAlgorithms sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521

# Certificates are accepted only when their CA signed with Ed25519 or
# RSA/SHA-2.
CASignatureAlgorithms sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256

# RSA keys below 2048 bits are refused (the default is 1024); the key step
# warns about keys below 3072 bits and the strict profile refuses them.
# Proxmox: Root's cluster RSA key and the RSA host key must have at least 2048
# bits (Proxmox VE generates 2048 or more).
RequiredRSASize 2048
`;

const EXPECTED_GROUPS_MATCH = `# Managed by pve-baseline (sshd hardening). Change it through pve-baseline:
# a hand edit is reported as drift and reverted by "pve-baseline revert".
#
# Why "00-": for most keywords sshd keeps the FIRST value it reads. Debian's
# /etc/ssh/sshd_config begins with "Include /etc/ssh/sshd_config.d/*.conf", so
# drop-ins are read before the main file's own settings, in lexical order;
# 00- puts this file ahead of the others (e.g. cloud-init's 50-cloud-init.conf,
# which sets PasswordAuthentication yes). A file that sorts before this one
# would win; pve-baseline compares "sshd -T" with these values before every
# reload and names the file that wins.
#
# Match blocks come last: a Match block lasts until the next Match or the end
# of the file, so a global setting after one would apply to the match only.
# Profile: strict.

# Public-key authentication is the one way in.
PubkeyAuthentication yes

# No passwords over SSH: they can be guessed, phished and reused; keys cannot.
PasswordAuthentication no

# No keyboard-interactive (PAM) prompts either: that is a password login by
# another name.
KbdInteractiveAuthentication no

# An account without a password never logs in over SSH.
PermitEmptyPasswords no

# Only a public key completes authentication, even if another file re-enables
# passwords.
AuthenticationMethods publickey

# root cannot log in over SSH from anywhere but the networks in the Match
# block below; admins use their own account and sudo.
# Proxmox: Clusters need root SSH between nodes, so root keeps key-only access
# from the cluster and management networks (Match Address below).
PermitRootLogin no

# Only members of sudo may log in; every other account is refused before
# authentication.
# Proxmox: Group root is included: root (whose primary group it is) must keep
# SSH for cluster operations (migration, replication, pvecm, the web shell on
# other nodes).
AllowGroups sudo root

# At most 3 authentication attempts per connection (Lynis: 3 or fewer is
# good).
# Proxmox: A client offering many agent keys may hit the limit before the
# right one: use IdentitiesOnly or -i. Cluster SSH uses one key.
MaxAuthTries 3

# An unauthenticated connection is dropped after 30 seconds (default 120), so
# half-open logins cannot pile up.
LoginGraceTime 30

# sshd checks an idle client every 300 seconds (Lynis: 300 or less is good).
ClientAliveInterval 300

# A client that misses 2 checks is disconnected: dead sessions end after 10
# minutes; live idle ones stay.
ClientAliveCountMax 2

# No X11 forwarding: a server has no display, and a forwarded X server exposes
# the client.
X11Forwarding no

# No agent forwarding: root on this node could use a forwarded agent to log in
# anywhere as you. Use ProxyJump instead.
AllowAgentForwarding no

# Users cannot set environment variables (LD_PRELOAD, ...) through
# ~/.ssh/environment.
PermitUserEnvironment no

# VERBOSE logs the fingerprint of the key used for each login: the audit trail
# names the key, not only the account.
LogLevel VERBOSE

# AllowTcpForwarding is not set here: left at the default (yes).
# Proxmox: Live migration and tools that tunnel VNC/SPICE through SSH need TCP
# forwarding; "no" breaks them.

# DisableForwarding is not set here: left at the default (no).
# Proxmox: DisableForwarding yes (CIS) also disables TCP forwarding and breaks
# SSH-tunnelled live migration.

# Post-quantum hybrid key exchange only (ssh-audit Debian 13 v1): recorded
# sessions cannot be decrypted later by a quantum computer; no SHA-1, no NIST
# curves.
# Proxmox: Every cluster node connects to this one as root with its own
# OpenSSH: all members need OpenSSH 8.5 or later (PVE 8 has 9.2, PVE 9 has
# 10.0; a PVE 7 node cannot connect).
KexAlgorithms sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com

# Authenticated encryption (ChaCha20-Poly1305, AES-GCM) and AES-CTR only; no
# CBC, no 3DES.
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-gcm@openssh.com,aes128-ctr

# Encrypt-then-MAC with SHA-2 or UMAC-128 only; no SHA-1, no 64-bit tags, no
# encrypt-and-MAC.
MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com

# Host keys signed with Ed25519 or RSA/SHA-2 only: no ssh-rsa (SHA-1), no
# ECDSA (NIST curves).
# Proxmox: The node's RSA host key stays offered (rsa-sha2-512/256): cluster
# peers pin it in /etc/ssh/ssh_known_hosts. Host keys are not regenerated.
HostKeyAlgorithms sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256

# User keys: Ed25519 (also FIDO sk-) and RSA with SHA-2 only; ECDSA and
# ssh-rsa (SHA-1) signatures are refused.
# Proxmox: Root's cluster key is RSA (/root/.ssh/id_rsa); it keeps working
# with rsa-sha2-512/256.
PubkeyAcceptedAlgorithms sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256

# Certificates are accepted only when their CA signed with Ed25519 or
# RSA/SHA-2.
CASignatureAlgorithms sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256

# RSA keys below 3072 bits are refused, for users and host keys alike (NIST:
# 3072 bits for 128-bit security).
# Proxmox: Root's cluster RSA key (/root/.ssh/id_rsa, shared through
# /etc/pve/priv/authorized_keys) and the RSA host key must have at least 3072
# bits on every node, or cluster SSH breaks; check with ssh-keygen -lf.
RequiredRSASize 3072

Match Address 10.0.0.0/24,192.168.10.0/24
    # From the cluster and management networks root may log in with a key
    # (never a password).
    # Proxmox: Cluster nodes connect to each other as root with keys
    # (/etc/pve/priv/authorized_keys): migration, replication, pvecm, the web
    # shell.
    PermitRootLogin prohibit-password
`;

/** An Exec that answers from a table keyed by argv joined with spaces. */
function fakeExec(table: Record<string, Partial<ExecResult>>): Exec & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async run(argv) {
      const key = argv.join(' ');
      calls.push(key);
      const r = table[key];
      if (!r) return { argv: [...argv], exitCode: 127, stdout: '', stderr: `${argv[0]}: not in the fake`, notFound: true };
      return { argv: [...argv], exitCode: 0, stdout: '', stderr: '', ...r };
    },
  };
}

// --- renderer ----------------------------------------------------------------

test('renderDropIn: users, root prohibit-password, compatible profile on OpenSSH 9.2 (exact text)', () => {
  const text = renderDropIn(intentSettings(USERS_PROHIBIT, SUPPORTED_92), USERS_PROHIBIT);
  assert.equal(text, EXPECTED_USERS_PROHIBIT);
});

test('renderDropIn: groups, root no + Match Address, strict profile on OpenSSH 9.2 (exact text)', () => {
  const text = renderDropIn(intentSettings(GROUPS_MATCH, SUPPORTED_92), GROUPS_MATCH);
  assert.equal(text, EXPECTED_GROUPS_MATCH);
});

test('renderDropIn: deterministic, Match block last, every written setting preceded by its reason', () => {
  const settings = intentSettings(GROUPS_MATCH, SUPPORTED_92);
  const a = renderDropIn(settings, GROUPS_MATCH);
  assert.equal(a, renderDropIn(intentSettings(GROUPS_MATCH, SUPPORTED_92), GROUPS_MATCH));
  const out = a.split('\n');
  const matchAt = out.findIndex((l) => l.startsWith('Match '));
  assert.ok(matchAt > 0);
  assert.ok(out.slice(matchAt + 1).every((l) => l === '' || l.startsWith('    ')), 'nothing global after the Match block');
  for (const [i, l] of out.entries()) {
    if (l && !l.trimStart().startsWith('#') && !l.startsWith('Match ')) assert.match(out[i - 1]!, /^\s*#/, `no reason above "${l}"`);
  }
  assert.doesNotMatch(a, /^AllowTcpForwarding|^DisableForwarding/m, 'forwarding left at the defaults for migration');
});

test('intentSettings: the issue 5 values, AllowUsers keeps admin and root, root@CIDR with a Match policy', () => {
  const byKey = (s: ReturnType<typeof intentSettings>) => new Map(s.filter((x) => !x.match && !x.leaveDefault).map((x) => [x.keyword, x.value]));
  const a = byKey(intentSettings(USERS_PROHIBIT, SUPPORTED_92));
  for (const [k, v] of Object.entries({
    PasswordAuthentication: 'no',
    KbdInteractiveAuthentication: 'no',
    PubkeyAuthentication: 'yes',
    AuthenticationMethods: 'publickey',
    PermitEmptyPasswords: 'no',
    PermitRootLogin: 'prohibit-password',
    AllowUsers: 'alice bob root',
    MaxAuthTries: '3',
    LoginGraceTime: '30',
    ClientAliveInterval: '300',
    ClientAliveCountMax: '2',
    X11Forwarding: 'no',
    AllowAgentForwarding: 'no',
    PermitUserEnvironment: 'no',
    LogLevel: 'VERBOSE',
  })) assert.equal(a.get(k), v, k);
  const noRoot = { ...USERS_PROHIBIT, allow: { mode: 'users' as const, names: [] }, root: { no: true as const, matchAddresses: ['10.0.0.0/24'] } };
  const s = intentSettings(noRoot, SUPPORTED_92);
  assert.equal(byKey(s).get('AllowUsers'), 'alice root@10.0.0.0/24');
  assert.equal(byKey(s).get('PermitRootLogin'), 'no');
  const m = s.filter((x) => x.match);
  assert.deepEqual(m.map((x) => [x.match, x.keyword, x.value]), [['Address 10.0.0.0/24', 'PermitRootLogin', 'prohibit-password']]);
  for (const x of s) assert.ok(x.reason.length > 10, `${x.keyword} has a reason`);
  assert.ok(s.find((x) => x.keyword === 'AllowTcpForwarding')?.proxmoxNote?.includes('migration'));
});

test('validateIntent: refuses what would lock someone out', () => {
  assert.deepEqual(validateIntent(USERS_PROHIBIT), []);
  assert.match(validateIntent({ ...USERS_PROHIBIT, admins: [] }).join(), /admin/);
  assert.match(validateIntent({ ...USERS_PROHIBIT, root: { no: true, matchAddresses: [] } }).join(), /cluster and management networks/);
  assert.match(validateIntent({ ...USERS_PROHIBIT, root: { no: true, matchAddresses: ['10.0.0.0/24; rm'] } }).join(), /not an address/);
  assert.match(validateIntent({ ...USERS_PROHIBIT, allow: { mode: 'groups', names: [] } }).join(), /AllowGroups/);
  assert.throws(() => intentSettings({ ...USERS_PROHIBIT, admins: ['bad name'] }, SUPPORTED_92), /not a valid user/);
});

// --- crypto -----------------------------------------------------------------

test('cryptoLists compatible on 9.2: the ssh-audit Debian 12 v3 lists, no mlkem, no ECDSA host keys, RequiredRSASize', () => {
  const r = cryptoLists('compatible', SUPPORTED_92);
  assert.ok(r.ok);
  const v = new Map(r.settings.map((s) => [s.keyword, s.value]));
  assert.equal(
    v.get('KexAlgorithms'),
    'sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256',
  );
  assert.equal(v.get('Ciphers'), 'chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-gcm@openssh.com,aes128-ctr');
  assert.equal(v.get('MACs'), 'hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com');
  assert.doesNotMatch(v.get('HostKeyAlgorithms')!, /ecdsa|ssh-rsa/);
  assert.match(v.get('PubkeyAcceptedAlgorithms')!, /ecdsa-sha2-nistp256/);
  assert.doesNotMatch(v.get('PubkeyAcceptedAlgorithms')!, /(^|,)ssh-rsa/);
  assert.equal(v.get('RequiredRSASize'), '2048');
  assert.deepEqual(r.dropped, [{ keyword: 'KexAlgorithms', names: ['mlkem768x25519-sha256'] }]);
  assert.equal(r.caveats, undefined);
});

test('cryptoLists strict: OpenSSH without mlkem still gets sntrup; ECDSA refused; caveats; 3072-bit RSA', () => {
  const r = cryptoLists('strict', SUPPORTED_92);
  assert.ok(r.ok);
  const v = new Map(r.settings.map((s) => [s.keyword, s.value]));
  assert.equal(v.get('KexAlgorithms'), 'sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com');
  assert.doesNotMatch(v.get('PubkeyAcceptedAlgorithms')!, /ecdsa/);
  assert.equal(v.get('RequiredRSASize'), '3072');
  assert.match(r.caveats!, /8\.5/);
  assert.match(r.caveats!, /PuTTY/);
  const v10 = { ...SUPPORTED_92, version: parseOpenSshVersion('OpenSSH_10.0p2 Debian-7'), kex: [...SUPPORTED_92.kex, 'mlkem768x25519-sha256'] };
  const r10 = cryptoLists('strict', v10);
  assert.ok(r10.ok);
  assert.equal(r10.settings[0]!.value, 'mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com');
});

test('cryptoLists strict impossible (OpenSSH 8.4, no PQ KEX): a clear error, never an empty list', () => {
  const old: SupportedAlgorithms = {
    ...SUPPORTED_92,
    version: parseOpenSshVersion('OpenSSH_8.4p1 Debian-5+deb11u3, OpenSSL 1.1.1w'),
    kex: SUPPORTED_92.kex.filter((k) => !k.startsWith('sntrup')),
  };
  const r = cryptoLists('strict', old);
  assert.equal(r.ok, false);
  assert.ok(!r.ok);
  assert.match(r.reason, /the strict profile cannot be satisfied: OpenSSH_8\.4p1 .* supports none of the KexAlgorithms/);
  assert.match(r.reason, /8\.5 or later/);
  assert.match(r.reason, /choose the compatible profile/);
  const c = cryptoLists('compatible', old);
  assert.ok(c.ok);
  assert.ok(!c.settings.some((s) => s.keyword === 'RequiredRSASize'), 'no RequiredRSASize before 9.1');
  assert.throws(() => intentSettings({ ...USERS_PROHIBIT, profile: 'strict' }, old), /strict profile cannot be satisfied/);
  // KbdInteractiveAuthentication is 8.7+; 8.4 knows it as ChallengeResponseAuthentication.
  const kbd = intentSettings(USERS_PROHIBIT, old).map((s) => s.keyword);
  assert.ok(kbd.includes('ChallengeResponseAuthentication') && !kbd.includes('KbdInteractiveAuthentication'));
  const noCiphers = cryptoLists('compatible', { ...SUPPORTED_92, cipher: ['aes128-cbc'] });
  assert.ok(!noCiphers.ok && /supports none of the Ciphers/.test(noCiphers.reason));
});

test('readSupported: runs ssh -Q and reads the version from sshd -V (9.x prints it with its usage)', async () => {
  const exec = fakeExec({
    '/usr/sbin/sshd -V': { exitCode: 1, stderr: `unknown option -- V\n${V92}\nusage: sshd [-46DdeGiqTtV] ...\n` },
    '/usr/bin/ssh -Q kex': { stdout: Q92.kex },
    '/usr/bin/ssh -Q cipher': { stdout: Q92.cipher },
    '/usr/bin/ssh -Q mac': { stdout: Q92.mac },
    '/usr/bin/ssh -Q key': { stdout: Q92.key },
    '/usr/bin/ssh -Q key-sig': { stdout: Q92['key-sig'] },
  });
  const s = await readSupported(exec);
  assert.deepEqual(s, SUPPORTED_92);
  assert.deepEqual(s.version, { major: 9, minor: 2, text: 'OpenSSH_9.2p1 Debian-2+deb12u10' });
});

// --- sshd -T ----------------------------------------------------------------

test('parseSshdT: a real Debian 13 sshd -T', () => {
  const m = parseSshdT(SSHD_T_DEBIAN13);
  assert.deepEqual(m.get('permitrootlogin'), ['yes']);
  assert.deepEqual(m.get('passwordauthentication'), ['yes']);
  assert.deepEqual(m.get('loglevel'), ['INFO']);
  assert.deepEqual(m.get('acceptenv'), ['LANG', 'LC_*', 'COLORTERM', 'NO_COLOR']);
  assert.deepEqual(m.get('authorizedkeysfile'), ['.ssh/authorized_keys', '.ssh/authorized_keys2']);
  assert.deepEqual(m.get('hostkey'), ['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_ecdsa_key', '/etc/ssh/ssh_host_ed25519_key']);
  assert.deepEqual(m.get('subsystem'), ['sftp /usr/lib/openssh/sftp-server']);
  assert.deepEqual(m.get('permitopen'), ['any']);
  assert.match(m.get('kexalgorithms')![0]!, /^mlkem768x25519-sha256,/);
  assert.equal(m.get('allowusers'), undefined);
});

test('parseSshdT: allowusers on several lines or one line with spaces', () => {
  const a = parseSshdT('allowusers alice\nallowusers root@10.0.0.0/24\nauthenticationmethods publickey,password publickey\n');
  assert.deepEqual(a.get('allowusers'), ['alice', 'root@10.0.0.0/24']);
  assert.deepEqual(a.get('authenticationmethods'), ['publickey,password', 'publickey']);
  assert.deepEqual(parseSshdT('AllowUsers alice root@10.0.0.0/24').get('allowusers'), ['alice', 'root@10.0.0.0/24']);
});

test('readEffective: sshd -T, with -C for a connection, and the error when the config is invalid', async () => {
  const exec = fakeExec({
    '/usr/sbin/sshd -T': { stdout: 'permitrootlogin without-password\n' },
    '/usr/sbin/sshd -T -C user=root,addr=10.0.0.5,host=pve2': { stdout: 'permitrootlogin without-password\n' },
  });
  const a = await readEffective(exec);
  assert.ok(a.ok && a.effective.get('permitrootlogin')?.[0] === 'without-password');
  const b = await readEffective(exec, { user: 'root', addr: '10.0.0.5', host: 'pve2' });
  assert.ok(b.ok);
  assert.deepEqual(exec.calls, ['/usr/sbin/sshd -T', '/usr/sbin/sshd -T -C user=root,addr=10.0.0.5,host=pve2']);
  const bad = fakeExec({ '/usr/sbin/sshd -T': { exitCode: 255, stderr: '/etc/ssh/sshd_config.d/00-aaa.conf line 1: Bad configuration option: Bogus\n' } });
  const c = await readEffective(bad);
  assert.deepEqual(c, { ok: false, error: '/etc/ssh/sshd_config.d/00-aaa.conf line 1: Bad configuration option: Bogus' });
});

// --- compare ----------------------------------------------------------------

/** What sshd -T would print for the settings (the way sshd prints them). */
function effectiveOf(settings: ReturnType<typeof intentSettings>, over: Record<string, string> = {}): string {
  const out: string[] = [];
  for (const s of settings.filter((x) => !x.match)) {
    const k = s.keyword.toLowerCase();
    if (k === 'allowusers' || k === 'allowgroups') for (const v of s.value.split(' ')) out.push(`${k} ${v}`);
    else out.push(`${k} ${k === 'permitrootlogin' && s.value === 'prohibit-password' ? 'without-password' : s.value}`);
  }
  return out.map((l) => over[l.split(' ')[0]!] !== undefined ? `${l.split(' ')[0]} ${over[l.split(' ')[0]!]}` : l).join('\n');
}

test('compareIntent: nothing missing when sshd -T shows the intent (without-password = prohibit-password, 30 = 30s)', () => {
  const s = intentSettings(USERS_PROHIBIT, SUPPORTED_92);
  assert.deepEqual(compareIntent(s, parseSshdT(effectiveOf(s))), []);
  assert.deepEqual(compareIntent(s, parseSshdT(effectiveOf(s, { logingracetime: '30s' }))), []);
});

test('compareIntent: reports each value not in force with wanted and actual', () => {
  const s = intentSettings(USERS_PROHIBIT, SUPPORTED_92);
  const eff = parseSshdT(`${effectiveOf(s, { passwordauthentication: 'yes', allowtcpforwarding: 'no' })}\nallowusers mallory\n`);
  eff.delete('loglevel');
  assert.deepEqual(compareIntent(s, eff), [
    { keyword: 'passwordauthentication', wanted: 'no', actual: 'yes' },
    { keyword: 'allowusers', wanted: 'alice bob root', actual: 'alice bob root mallory' },
    { keyword: 'loglevel', wanted: 'VERBOSE', actual: undefined },
    { keyword: 'allowtcpforwarding', wanted: 'yes', actual: 'no', advisory: true },
  ]);
  // The real Debian 13 defaults fail nearly everything.
  const fresh = compareIntent(s, parseSshdT(SSHD_T_DEBIAN13));
  assert.ok(fresh.some((d) => d.keyword === 'permitrootlogin' && d.actual === 'yes'));
  assert.ok(fresh.some((d) => d.keyword === 'allowusers' && d.actual === undefined));
});

test('compareIntent scope match: the Match block value replaces the global one', () => {
  const s = intentSettings(GROUPS_MATCH, SUPPORTED_92);
  const globalEff = parseSshdT(effectiveOf(s));
  assert.deepEqual(compareIntent(s, globalEff), []);
  assert.deepEqual(compareIntent(s, globalEff, 'match'), [{ keyword: 'permitrootlogin', wanted: 'prohibit-password', actual: 'no' }]);
  assert.deepEqual(compareIntent(s, parseSshdT(effectiveOf(s, { permitrootlogin: 'without-password' })), 'match'), []);
});

// --- who wins ---------------------------------------------------------------

const MAIN = `# Debian's sshd_config (abridged)
Include /etc/ssh/sshd_config.d/*.conf

PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no

Match User backup
    PasswordAuthentication yes
`;
const AAA = `# someone else's
PasswordAuthentication yes
Match Address 192.0.2.0/24
	PermitRootLogin yes
`;
const OURS = `PasswordAuthentication no
PermitRootLogin no
Match Address 10.0.0.0/24
    PermitRootLogin prohibit-password
`;
const CLOUD = `PasswordAuthentication = yes\n`;

test('whoWins: a competing 00-aaa.conf sorts before ours and wins; Match blocks in any file are reported', () => {
  const files = [
    { path: '/etc/ssh/sshd_config', text: MAIN },
    { path: '/etc/ssh/sshd_config.d/50-cloud-init.conf', text: CLOUD },
    { path: '/etc/ssh/sshd_config.d/00-pve-baseline.conf', text: OURS },
    { path: '/etc/ssh/sshd_config.d/00-aaa.conf', text: AAA },
  ];
  const w = whoWins('PasswordAuthentication', files);
  assert.deepEqual(w.winner, { path: '/etc/ssh/sshd_config.d/00-aaa.conf', line: 2, value: 'yes' });
  assert.deepEqual(
    w.global.map((o) => `${o.path.split('/').pop()}:${o.line}=${o.value}`),
    ['00-aaa.conf:2=yes', '00-pve-baseline.conf:1=no', '50-cloud-init.conf:1=yes', 'sshd_config:5=yes'],
  );
  assert.deepEqual(w.matches, [{ path: '/etc/ssh/sshd_config', line: 9, value: 'yes', criteria: 'User backup', matchLine: 8 }]);
  assert.match(describeWinner(w), /passwordauthentication is set first by \/etc\/ssh\/sshd_config.d\/00-aaa.conf:2 \("yes"\); overridden for "Match User backup" by \/etc\/ssh\/sshd_config:9/);

  // The Match block in 00-aaa.conf ends with that file: our global PermitRootLogin is global.
  const r = whoWins('permitrootlogin', files);
  assert.deepEqual(r.winner, { path: '/etc/ssh/sshd_config.d/00-pve-baseline.conf', line: 2, value: 'no' });
  assert.deepEqual(
    r.matches.map((m) => [m.path.split('/').pop(), m.criteria, m.value]),
    [['00-aaa.conf', 'Address 192.0.2.0/24', 'yes'], ['00-pve-baseline.conf', 'Address 10.0.0.0/24', 'prohibit-password']],
  );
  // Without the competitor, ours wins.
  assert.equal(whoWins('PasswordAuthentication', files.filter((f) => !f.path.endsWith('00-aaa.conf'))).winner?.path, '/etc/ssh/sshd_config.d/00-pve-baseline.conf');
  assert.equal(whoWins('LogLevel', files).winner, undefined);
});

test('readConfigFiles: main file, then the Include glob in lexical order, skipping non-matching names', async () => {
  const disk: Record<string, string> = {
    '/etc/ssh/sshd_config': MAIN,
    '/etc/ssh/sshd_config.d/00-aaa.conf': AAA,
    '/etc/ssh/sshd_config.d/00-pve-baseline.conf': OURS,
    '/etc/ssh/sshd_config.d/50-cloud-init.conf': `Include /etc/ssh/extra.conf\n${CLOUD}`,
    '/etc/ssh/sshd_config.d/README': 'not included',
    '/etc/ssh/extra.conf': 'LogLevel INFO\n',
  };
  const files = { read: async (p: string) => disk[p] ?? null };
  const listed: string[] = [];
  const list = async (dir: string) => {
    listed.push(dir);
    return Object.keys(disk).filter((p) => p.startsWith(`${dir}/`)).map((p) => p.slice(dir.length + 1)).filter((n) => !n.includes('/')).reverse();
  };
  const read = await readConfigFiles(files, list);
  assert.deepEqual(read.map((f) => f.path), [
    '/etc/ssh/sshd_config',
    '/etc/ssh/sshd_config.d/00-aaa.conf',
    '/etc/ssh/sshd_config.d/00-pve-baseline.conf',
    '/etc/ssh/sshd_config.d/50-cloud-init.conf',
    '/etc/ssh/extra.conf',
  ]);
  assert.deepEqual(listed, ['/etc/ssh/sshd_config.d']);
  assert.deepEqual(whoWins('loglevel', read).winner, { path: '/etc/ssh/extra.conf', line: 1, value: 'INFO' });
  const none = await readConfigFiles({ read: async () => null }, async () => []);
  assert.deepEqual(none, []);
});
