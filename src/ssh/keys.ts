/**
 * SSH public keys as an operator pastes them: one per line, in
 * authorized_keys form (`[options] type base64 [comment]`). Each key is
 * checked with ssh2's parser (loaded only here, with import()), measured from
 * its wire blob, fingerprinted the way `ssh-keygen -lf` does (SHA256, base64
 * without padding), and judged against the baseline's policy.
 *
 * ssh2's parser knows no security-key (sk-) types, so those are read from
 * their wire blob here: string type, then the key, then the application.
 */
import { createHash } from 'node:crypto';
import { loadSsh2 } from './ssh2.ts';

export type KeyFamily = 'ed25519' | 'ecdsa' | 'rsa' | 'dsa' | 'sk-ed25519' | 'sk-ecdsa';

export interface PublicKey {
  /** 1-based line in the pasted text. */
  line: number;
  /** authorized_keys options before the key (from="...", ...), or null. */
  options: string | null;
  type: string;
  family: KeyFamily;
  bits: number;
  comment: string;
  /** SHA256:... as ssh-keygen -l and sshd's log print it. */
  fingerprint: string;
  base64: string;
}

export interface KeyCheck {
  keys: PublicKey[];
  /** Refusals: each names the line and says what is wanted. */
  problems: string[];
  /** Accepted with a caution (RSA 2048, a duplicate). */
  warnings: string[];
}

export const RSA_MIN_BITS = 3072;
export const RSA_REFUSE_BELOW = 2048;

const TYPES: Record<string, KeyFamily> = {
  'ssh-ed25519': 'ed25519',
  'ecdsa-sha2-nistp256': 'ecdsa',
  'ecdsa-sha2-nistp384': 'ecdsa',
  'ecdsa-sha2-nistp521': 'ecdsa',
  'sk-ssh-ed25519@openssh.com': 'sk-ed25519',
  'sk-ecdsa-sha2-nistp256@openssh.com': 'sk-ecdsa',
  'ssh-rsa': 'rsa',
  'ssh-dss': 'dsa',
};

export const PRIVATE_KEY_REFUSED =
  'this is a PRIVATE key. It was not stored or sent anywhere; paste the public key instead (the .pub file, e.g. ~/.ssh/id_ed25519.pub). ' +
  'If you pasted it anywhere shared, consider it exposed and make a new one.';

const EXAMPLE = 'TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAAC3Nz... alice@laptop';

/** Read the SSH wire format's length-prefixed strings. */
function wireStrings(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < blob.length) {
    if (at + 4 > blob.length) throw new Error('truncated');
    const len = blob.readUInt32BE(at);
    at += 4;
    if (at + len > blob.length) throw new Error('truncated');
    out.push(blob.subarray(at, at + len));
    at += len;
  }
  return out;
}

function mpintBits(value: Buffer): number {
  let i = 0;
  while (i < value.length && value[i] === 0) i++;
  if (i === value.length) return 0;
  return (value.length - i - 1) * 8 + (32 - Math.clz32(value[i]!));
}

/** Bits of the key, from its blob; throws when the blob does not hold a whole key of that type. */
function keyBits(type: string, blob: Buffer): number {
  const parts = wireStrings(blob);
  if (parts[0]?.toString('latin1') !== type) throw new Error('type mismatch');
  switch (TYPES[type]) {
    case 'rsa':
      if (parts.length !== 3) throw new Error('bad rsa');
      return mpintBits(parts[2]!);
    case 'dsa':
      if (parts.length !== 5) throw new Error('bad dsa');
      return mpintBits(parts[1]!);
    case 'ed25519':
      if (parts.length !== 2 || parts[1]!.length !== 32) throw new Error('bad ed25519');
      return 256;
    case 'ecdsa':
      if (parts.length !== 3) throw new Error('bad ecdsa');
      return Number(type.slice(-3));
    case 'sk-ed25519':
      if (parts.length !== 3 || parts[1]!.length !== 32) throw new Error('bad sk-ed25519');
      return 256;
    case 'sk-ecdsa':
      if (parts.length !== 4 || parts[1]!.toString('latin1') !== 'nistp256') throw new Error('bad sk-ecdsa');
      return 256;
    default:
      throw new Error('unknown');
  }
}

export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

const isKeyType = (token: string) => Object.hasOwn(TYPES, token) || /-cert-v0[01]@openssh\.com$/.test(token);

/**
 * authorized_keys options as sshd reads them (OpenSSH auth-options.c): flags,
 * some negatable with "no-", and NAME="value" options. Names are matched
 * without regard to case, as sshd does.
 */
const FLAG_OPTIONS = ['restrict', 'cert-authority'];
const NEGATABLE_FLAGS = ['port-forwarding', 'agent-forwarding', 'x11-forwarding', 'touch-required', 'verify-required', 'pty', 'user-rc'];
const VALUE_OPTIONS = ['command', 'principals', 'from', 'expiry-time', 'environment', 'permitopen', 'permitlisten', 'tunnel'];

export interface KeyOption {
  /** Lowercase, without a "no-" prefix. */
  name: string;
  /** For a flag: false when written as no-NAME. */
  enabled?: boolean;
  /** For NAME="value": the value with its \" escapes undone. */
  value?: string;
}

/** sshd separates the fields of an authorized_keys line with spaces and tabs only. */
const FIELD_SPACE = /[ \t]+/;

/**
 * Split `[options] type base64 [comment]` the way sshd does: a line whose
 * first field is a key type has no options; otherwise the options run to the
 * first space or tab outside double quotes, where \" does not end a quote
 * (sshkey_advance_past_options). An unterminated quote makes sshd skip the
 * line, so it is a problem here.
 */
export function splitAuthorizedKeysLine(line: string): { options: string | null; rest: string } | { problem: string } {
  if (isKeyType(line.split(FIELD_SPACE, 1)[0]!)) return { options: null, rest: line };
  let i = 0;
  let quoted = false;
  for (; i < line.length && (quoted || (line[i] !== ' ' && line[i] !== '\t')); i++) {
    if (line[i] === '\\' && line[i + 1] === '"') i++;
    else if (line[i] === '"') quoted = !quoted;
  }
  if (quoted) {
    // Only a line that holds a key somewhere is taken for options gone wrong; other text is simply not a key.
    return line.split(FIELD_SPACE).some(isKeyType) ? { problem: 'the options before the key have a double quote (") that is never closed; sshd would ignore this key' } : { options: null, rest: line };
  }
  const rest = line.slice(i).replace(/^[ \t]+/, '');
  // Options only when a key type follows them; otherwise the first word is an (unknown) type.
  return isKeyType(rest.split(FIELD_SPACE, 1)[0]!) ? { options: line.slice(0, i), rest } : { options: null, rest: line };
}

/**
 * The options of a key, checked as sshd checks them (sshauthopt_parse): a
 * comma-separated list of known flags and NAME="value" options with nothing
 * in between. Returns what is wrong in the operator's terms, since sshd
 * would ignore the whole key.
 */
export function parseKeyOptions(text: string): { options: KeyOption[] } | { problem: string } {
  const options: KeyOption[] = [];
  const known = () => [...FLAG_OPTIONS, ...NEGATABLE_FLAGS.map((f) => `[no-]${f}`), ...VALUE_OPTIONS.map((v) => `${v}="..."`)].join(', ');
  let at = 0;
  while (at < text.length) {
    const name = text.slice(at).split(/[,="]/, 1)[0]!;
    const lower = name.toLowerCase();
    at += name.length;
    if (text[at] === '=') {
      if (!VALUE_OPTIONS.includes(lower)) return { problem: `"${name}=" is not an authorized_keys option sshd knows (${known()})` };
      at++;
      if (text[at] !== '"') return { problem: `the option ${lower}= wants its value in double quotes (${lower}="...")` };
      let value = '';
      for (at++; at < text.length && text[at] !== '"'; at++) {
        if (text[at] === '\\' && text[at + 1] === '"') at++;
        value += text[at];
      }
      if (at >= text.length) return { problem: `the value of ${lower}= has no closing double quote` };
      at++;
      options.push({ name: lower, value });
    } else if (FLAG_OPTIONS.includes(lower) || NEGATABLE_FLAGS.includes(lower)) {
      options.push({ name: lower, enabled: true });
    } else if (lower.startsWith('no-') && NEGATABLE_FLAGS.includes(lower.slice(3))) {
      options.push({ name: lower.slice(3), enabled: false });
    } else {
      return { problem: `"${name || text.slice(at, at + 1)}" is not an authorized_keys option sshd knows (${known()})` };
    }
    if (at === text.length) break;
    if (text[at] !== ',') return { problem: `the options want a comma after "${text.slice(0, at)}"` };
    at++;
    if (at === text.length) return { problem: 'the options end with a comma' };
  }
  return { options };
}

/** Options and key fields of one line, or why sshd would not read it. */
function splitLine(line: string): { options: string | null; rest: string } | { problem: string } {
  const split = splitAuthorizedKeysLine(line);
  if ('problem' in split || split.options === null) return split;
  const parsed = parseKeyOptions(split.options);
  return 'problem' in parsed ? { problem: parsed.problem } : split;
}

type Ssh2Utils = typeof import('ssh2').utils;

function checkLine(raw: string, lineNo: number, utils: Ssh2Utils): { key?: PublicKey; problem?: string; warning?: string } {
  const at = `line ${lineNo}`;
  const split = splitLine(raw);
  if ('problem' in split) return { problem: `${at}: ${split.problem}` };
  const { options, rest } = split;
  const [type = '', base64 = '', ...commentWords] = rest.split(FIELD_SPACE);
  const comment = commentWords.join(' ');
  if (/-cert-v0[01]@openssh\.com$/.test(type)) return { problem: `${at}: ${type} is an SSH certificate; paste the plain public key instead` };
  const family = Object.hasOwn(TYPES, type) ? TYPES[type] : undefined;
  if (!family) {
    // A word shaped like a key type (ssh-foo, ecdsa-sha2-x) gets its own message; anything else is not a key.
    return !/^[a-z0-9]+(-[a-z0-9.]+)+(@[a-z0-9.-]+)?$/.test(type) || !base64
      ? { problem: `${at}: not an SSH public key (wanted ${EXAMPLE})` }
      : { problem: `${at}: "${type}" is not a key type OpenSSH accepts (ssh-ed25519, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com, ssh-rsa)` };
  }
  if (family === 'dsa') return { problem: `${at}: ssh-dss (DSA) keys are refused: they are 1024-bit and OpenSSH 10 no longer accepts them; make an ed25519 key (ssh-keygen -t ed25519)` };
  const damaged = { problem: `${at}: the ${type} key data is damaged or cut off; copy the whole line again` };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return damaged;
  const blob = Buffer.from(base64, 'base64');
  let bits: number;
  try {
    bits = keyBits(type, blob);
    if (!family.startsWith('sk-')) {
      const parsed = utils.parseKey(`${type} ${base64}`);
      if (parsed instanceof Error || (Array.isArray(parsed) ? parsed[0] : parsed)?.type !== type) return damaged;
    }
  } catch {
    return damaged;
  }
  const key: PublicKey = { line: lineNo, options, type, family, bits, comment, fingerprint: fingerprintOf(blob), base64 };
  if (family === 'rsa' && bits < RSA_REFUSE_BELOW) {
    return { problem: `${at}: an RSA key of ${bits} bits is refused: RSA needs at least ${RSA_MIN_BITS} bits (2048 is accepted with a warning); better, make an ed25519 key` };
  }
  if (family === 'rsa' && bits < RSA_MIN_BITS) {
    return { key, warning: `${at}: an RSA key of ${bits} bits is accepted, but ${RSA_MIN_BITS} bits or an ed25519 key is recommended, and the strict sshd profile will refuse it` };
  }
  return { key };
}

/** Check pasted text (one key per line; blank lines and # comments ignored). */
export async function checkPublicKeys(text: string): Promise<KeyCheck> {
  const result: KeyCheck = { keys: [], problems: [], warnings: [] };
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text) || /PuTTY-User-Key-File/.test(text)) {
    result.problems.push(PRIVATE_KEY_REFUSED);
    return result;
  }
  const { utils } = await loadSsh2();
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const checked = checkLine(line, i + 1, utils);
    if (checked.problem) result.problems.push(checked.problem);
    if (checked.warning) result.warnings.push(checked.warning);
    if (!checked.key) return;
    const earlier = seen.get(checked.key.fingerprint);
    if (earlier !== undefined) {
      result.warnings.push(`line ${i + 1}: the same key as line ${earlier}; it is installed once`);
      return;
    }
    seen.set(checked.key.fingerprint, i + 1);
    result.keys.push(checked.key);
  });
  if (!result.keys.length && !result.problems.length) result.problems.push(`no public key given (wanted ${EXAMPLE})`);
  return result;
}

/**
 * The keys of text that checkPublicKeys accepted, read again without ssh2
 * (synchronously, for a step's plan): lines that do not parse are skipped.
 */
export function readCheckedKeys(text: string): PublicKey[] {
  const keys: PublicKey[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const split = splitLine(line);
    if ('problem' in split) return;
    const { options, rest } = split;
    const [type = '', base64 = '', ...comment] = rest.split(FIELD_SPACE);
    const family = Object.hasOwn(TYPES, type) ? TYPES[type] : undefined;
    if (!family) return;
    try {
      const blob = Buffer.from(base64, 'base64');
      const key = { line: i + 1, options, type, family, bits: keyBits(type, blob), comment: comment.join(' '), fingerprint: fingerprintOf(blob), base64 };
      if (!seen.has(key.fingerprint)) keys.push(key);
      seen.add(key.fingerprint);
    } catch {
      // not a whole key: checkPublicKeys refused it already
    }
  });
  return keys;
}

/** The authorized_keys line for a key (options kept only when asked to). */
export function authorizedKeysLine(key: PublicKey, keepOptions: boolean): string {
  return [keepOptions && key.options ? key.options : '', key.type, key.base64, key.comment].filter(Boolean).join(' ');
}

/** How a key reads in a confirmation or the document: "ED25519 256 bits SHA256:… alice@laptop". */
export function describeKey(key: PublicKey): string {
  return `${key.family.toUpperCase()} ${key.bits} bits ${key.fingerprint}${key.comment ? ` ${key.comment}` : ''}`;
}

type KeyGenOptions = { bits?: number; comment?: string };

/**
 * A new key pair from ssh2's generator, checked before use. ssh2 1.17 writes
 * an ed25519 public key whose first byte is 0 as 31 bytes (it strips the
 * zero as if the key were an mpint), about one key in 256; OpenSSH refuses
 * such a key. Such a pair is thrown away and another made.
 */
export async function generateKeyPair(type: 'ed25519' | 'rsa' | 'ecdsa', options: KeyGenOptions = {}): Promise<{ public: string; private: string }> {
  const { utils } = await loadSsh2();
  for (let attempt = 0; attempt < 32; attempt++) {
    const pair = utils.generateKeyPairSync(type as 'rsa', options as { bits: number; comment?: string });
    if (readCheckedKeys(pair.public).length === 1) return pair;
  }
  throw new Error(`could not generate a well-formed ${type} key`);
}
