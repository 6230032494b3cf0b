/**
 * sshd's algorithm lists, built from what the installed OpenSSH supports.
 *
 * Two profiles:
 *   compatible  the ssh-audit "Hardened Debian 12 (version 3)" lists (which
 *               pass that policy on PVE 8), with mlkem768x25519-sha256 first
 *               where OpenSSH has it (10.0 on PVE 9)
 *   strict      the ssh-audit Debian 13 (version 1) post-quantum-only key
 *               exchange, same ciphers and MACs, no ECDSA anywhere
 *
 * Every wanted list is intersected with `ssh -Q` of the installed OpenSSH
 * (client and server come from one source package on Debian, so the client's
 * list is the server's), in the wanted order. An empty intersection is never
 * written: sshd would refuse it or every client would; the profile is
 * reported as impossible instead, with the reason.
 */
import type { Exec } from '../system/exec.ts';
import { RSA_MIN_BITS, RSA_REFUSE_BELOW } from './keys.ts';

export type CryptoProfile = 'compatible' | 'strict';

export interface OpenSshVersion {
  major: number;
  minor: number;
  /** As printed, e.g. "OpenSSH_10.0p2 Debian-7+deb13u4". */
  text: string;
}

/** What the installed OpenSSH offers (`ssh -Q ...`) and its version. */
export interface SupportedAlgorithms {
  version: OpenSshVersion | null;
  kex: string[];
  cipher: string[];
  mac: string[];
  /** `ssh -Q key`: key types (no rsa-sha2 signature names). */
  key: string[];
  /** `ssh -Q key-sig`: key types and signature algorithms (rsa-sha2-256/512). */
  keySig: string[];
}

export const SSH = '/usr/bin/ssh';
export const SSHD = '/usr/sbin/sshd';

/** OpenSSH_10.0p2 ... -> {10, 0}; null when the text holds no version. */
export function parseOpenSshVersion(text: string): OpenSshVersion | null {
  const m = /OpenSSH_(\d+)\.(\d+)(p\d+)?[^,\n]*/.exec(text);
  if (!m) return null;
  return { major: Number(m[1]), minor: Number(m[2]), text: m[0].trim() };
}

export function versionAtLeast(version: OpenSshVersion | null, major: number, minor: number): boolean {
  if (!version) return false;
  return version.major > major || (version.major === major && version.minor >= minor);
}

const lines = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

/**
 * Ask the installed OpenSSH what it supports. The version comes from
 * `sshd -V` (9.x prints it in its usage message, 10.x as the answer), else
 * `ssh -V`; both print on stderr.
 */
export async function readSupported(exec: Exec): Promise<SupportedAlgorithms> {
  const query = async (what: string): Promise<string[]> => {
    const r = await exec.run([SSH, '-Q', what]);
    return r.exitCode === 0 ? lines(r.stdout) : [];
  };
  let version: OpenSshVersion | null = null;
  for (const argv of [[SSHD, '-V'], [SSH, '-V']]) {
    const r = await exec.run(argv);
    version = parseOpenSshVersion(`${r.stderr}\n${r.stdout}`);
    if (version) break;
  }
  const kex = await query('kex');
  const cipher = await query('cipher');
  const mac = await query('mac');
  const key = await query('key');
  let keySig = await query('key-sig');
  if (keySig.length === 0) {
    // Older clients without key-sig: rsa-sha2 is there whenever ssh-rsa is (OpenSSH >= 7.2).
    keySig = key.flatMap((k) =>
      k === 'ssh-rsa' ? [k, 'rsa-sha2-256', 'rsa-sha2-512'] : k === 'ssh-rsa-cert-v01@openssh.com' ? [k, 'rsa-sha2-256-cert-v01@openssh.com', 'rsa-sha2-512-cert-v01@openssh.com'] : [k],
    );
  }
  return { version, kex, cipher, mac, key, keySig };
}

// --- the wanted lists, in order of preference -------------------------------

/** Post-quantum hybrid key exchanges: ML-KEM (OpenSSH 9.9+) and Streamlined NTRU Prime (8.5+). */
export const PQ_KEX = ['mlkem768x25519-sha256', 'sntrup761x25519-sha512', 'sntrup761x25519-sha512@openssh.com'];

/**
 * ssh-audit Debian 12 v3 KexAlgorithms, preceded by mlkem. The guide's
 * gss-curve25519-sha256- and gss-group16-sha512- entries are GSSAPI key
 * exchanges (GSSAPIKexAlgorithms, off by default); `ssh -Q kex` never lists
 * them, so they are not part of KexAlgorithms here.
 */
export const COMPATIBLE_KEX = [
  'mlkem768x25519-sha256',
  'sntrup761x25519-sha512',
  'sntrup761x25519-sha512@openssh.com',
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  'diffie-hellman-group-exchange-sha256',
];

export const CIPHERS = ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-gcm@openssh.com', 'aes128-ctr'];

export const MACS = ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'umac-128-etm@openssh.com'];

/** Host keys: Ed25519 and RSA with SHA-2 (never ssh-rsa/SHA-1, never ECDSA: ssh-audit fails NIST curves). */
export const HOST_KEY_ALGORITHMS = [
  'sk-ssh-ed25519-cert-v01@openssh.com',
  'ssh-ed25519-cert-v01@openssh.com',
  'rsa-sha2-512-cert-v01@openssh.com',
  'rsa-sha2-256-cert-v01@openssh.com',
  'sk-ssh-ed25519@openssh.com',
  'ssh-ed25519',
  'rsa-sha2-512',
  'rsa-sha2-256',
];

const ECDSA_USER_KEYS = [
  'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
];

export const CA_SIGNATURE_ALGORITHMS = ['sk-ssh-ed25519@openssh.com', 'ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'];

export interface WantedLists {
  kex: string[];
  ciphers: string[];
  macs: string[];
  hostKeys: string[];
  pubkeys: string[];
  caSignatures: string[];
}

export function wantedLists(profile: CryptoProfile): WantedLists {
  return {
    kex: profile === 'strict' ? PQ_KEX : COMPATIBLE_KEX,
    ciphers: CIPHERS,
    macs: MACS,
    hostKeys: HOST_KEY_ALGORITHMS,
    // Operators' keys: ECDSA (incl. FIDO sk-ecdsa) only in the compatible profile.
    pubkeys: profile === 'strict' ? HOST_KEY_ALGORITHMS : [...HOST_KEY_ALGORITHMS, ...ECDSA_USER_KEYS],
    caSignatures: CA_SIGNATURE_ALGORITHMS,
  };
}

/** The setting shape shared with sshd.ts. */
export interface CryptoSetting {
  keyword: string;
  value: string;
  reason: string;
  proxmoxNote?: string;
}

export type CryptoResult =
  | { ok: true; profile: CryptoProfile; settings: CryptoSetting[]; dropped: { keyword: string; names: string[] }[]; caveats?: string }
  | { ok: false; profile: CryptoProfile; reason: string };

export const STRICT_CLIENT_CAVEATS =
  'The strict profile accepts post-quantum key exchange only. OpenSSH clients need 8.5 or later for ' +
  'sntrup761x25519-sha512@openssh.com (the default since 9.0) and 9.9 or later for mlkem768x25519-sha256 ' +
  '(the default since 10.0); PuTTY needs 0.78 or later. Clients without either (OpenSSH 8.4 and older, e.g. ' +
  'Debian 11 and PVE 7; older PuTTY/WinSCP; paramiko-based tools; check Go- and libssh-based tools such as ' +
  'Terraform providers) cannot connect at all. RSA keys below 3072 bits and ECDSA keys are refused.';

const versionText = (s: SupportedAlgorithms) => s.version?.text ?? 'the installed OpenSSH (version unknown)';

/**
 * The crypto settings of a profile for this OpenSSH: each wanted list
 * intersected with what it supports, in the wanted order. Not ok when any
 * list would be empty, with the reason.
 */
export function cryptoLists(profile: CryptoProfile, supported: SupportedAlgorithms): CryptoResult {
  const wanted = wantedLists(profile);
  const keySig = supported.keySig.length ? supported.keySig : supported.key;
  const pick = (want: string[], have: string[]) => want.filter((a) => have.includes(a));
  const lists: [keyword: string, want: string[], have: string[], reason: string, proxmoxNote?: string][] = [
    [
      'KexAlgorithms',
      wanted.kex,
      supported.kex,
      profile === 'strict'
        ? 'Post-quantum hybrid key exchange only (ssh-audit Debian 13 v1): recorded sessions cannot be decrypted later by a quantum computer; no SHA-1, no NIST curves.'
        : 'Post-quantum hybrids first, then curve25519 and large finite-field groups (ssh-audit Debian 12 v3); no SHA-1, no NIST curves, no 2048-bit group14.',
      profile === 'strict'
        ? 'Every cluster node connects to this one as root with its own OpenSSH: all members need OpenSSH 8.5 or later (PVE 8 has 9.2, PVE 9 has 10.0; a PVE 7 node cannot connect).'
        : 'All Proxmox VE 8/9 nodes negotiate sntrup761 or mlkem with each other; curve25519 stays for older clients.',
    ],
    ['Ciphers', wanted.ciphers, supported.cipher, 'Authenticated encryption (ChaCha20-Poly1305, AES-GCM) and AES-CTR only; no CBC, no 3DES.'],
    ['MACs', wanted.macs, supported.mac, 'Encrypt-then-MAC with SHA-2 or UMAC-128 only; no SHA-1, no 64-bit tags, no encrypt-and-MAC.'],
    [
      'HostKeyAlgorithms',
      wanted.hostKeys,
      keySig,
      'Host keys signed with Ed25519 or RSA/SHA-2 only: no ssh-rsa (SHA-1), no ECDSA (NIST curves).',
      "The node's RSA host key stays offered (rsa-sha2-512/256): cluster peers pin it in /etc/ssh/ssh_known_hosts. Host keys are not regenerated.",
    ],
    [
      'PubkeyAcceptedAlgorithms',
      wanted.pubkeys,
      keySig,
      profile === 'strict'
        ? 'User keys: Ed25519 (also FIDO sk-) and RSA with SHA-2 only; ECDSA and ssh-rsa (SHA-1) signatures are refused.'
        : 'User keys: Ed25519, ECDSA and their FIDO (sk-) variants, RSA with SHA-2; ssh-rsa (SHA-1) signatures are refused.',
      "Root's cluster key is RSA (/root/.ssh/id_rsa); it keeps working with rsa-sha2-512/256.",
    ],
    ['CASignatureAlgorithms', wanted.caSignatures, keySig, 'Certificates are accepted only when their CA signed with Ed25519 or RSA/SHA-2.'],
  ];
  const settings: CryptoSetting[] = [];
  const dropped: { keyword: string; names: string[] }[] = [];
  for (const [keyword, want, have, reason, proxmoxNote] of lists) {
    const value = pick(want, have);
    if (value.length === 0) {
      const why =
        keyword === 'KexAlgorithms' && profile === 'strict'
          ? ` (sntrup761x25519 needs OpenSSH 8.5 or later, mlkem768x25519-sha256 needs 9.9 or later); choose the compatible profile`
          : '';
      return {
        ok: false,
        profile,
        reason: `the ${profile} profile cannot be satisfied: ${versionText(supported)} supports none of the ${keyword} it needs (${want.join(', ')})${why}`,
      };
    }
    const missing = want.filter((a) => !have.includes(a));
    if (missing.length) dropped.push({ keyword, names: missing });
    settings.push({ keyword, value: value.join(','), reason, ...(proxmoxNote ? { proxmoxNote } : {}) });
  }
  // RequiredRSASize appeared in OpenSSH 9.1; an older sshd refuses the keyword (sshd -t fails).
  if (versionAtLeast(supported.version, 9, 1)) {
    const bits = profile === 'strict' ? RSA_MIN_BITS : RSA_REFUSE_BELOW;
    settings.push({
      keyword: 'RequiredRSASize',
      value: String(bits),
      reason:
        profile === 'strict'
          ? `RSA keys below ${bits} bits are refused, for users and host keys alike (NIST: 3072 bits for 128-bit security).`
          : `RSA keys below ${bits} bits are refused (the default is 1024); the key step warns about keys below ${RSA_MIN_BITS} bits and the strict profile refuses them.`,
      proxmoxNote:
        profile === 'strict'
          ? "Root's cluster RSA key (/root/.ssh/id_rsa, shared through /etc/pve/priv/authorized_keys) and the RSA host key must have at least 3072 bits on every node, or cluster SSH breaks; check with ssh-keygen -lf."
          : "Root's cluster RSA key and the RSA host key must have at least 2048 bits (Proxmox VE generates 2048 or more).",
    });
  }
  return { ok: true, profile, settings, dropped, ...(profile === 'strict' ? { caveats: STRICT_CLIENT_CAVEATS } : {}) };
}
