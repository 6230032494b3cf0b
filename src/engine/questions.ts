/**
 * Codecs: one place where an answer is read and checked, whichever way it
 * arrives (typed into the wizard, read from an answers file, remembered by
 * the journal). A codec turns the raw value into the typed answer, or says
 * what is wanted, never just "invalid". The `ask` helpers build a step's
 * questions with their codec, so the step's answers object is typed:
 *
 *   questions: [
 *     ask.text({ id: 'name', prompt: 'Name', maxLength: 32, check: ... }),
 *     ask.integer({ id: 'seconds', prompt: 'Seconds', min: 30, max: 1800 }),
 *   ]
 *
 * Every text is one line without control characters (a line break in a
 * password would reach chpasswd as a second "name:password" line; an escape
 * sequence in a comment would repaint the operator's terminal when shown),
 * and has a length limit.
 */
import ipaddr from 'ipaddr.js';
import { Secret } from '../system/secret.ts';
import { DEFAULT_REVERT_SECONDS } from './revert/paths.ts';
import type {
  AnswerDetails,
  AnswerDocument,
  AnswerValue,
  Answers,
  Choice,
  Codec,
  ConfirmQuestion,
  PasswordQuestion,
  Question,
  QuestionContext,
  SelectQuestion,
  TextQuestion,
  Validation,
  Validator,
} from './step.ts';
import { isSecretQuestion } from './step.ts';

const TRUE_WORDS = new Set(['yes', 'y', 'true', 'on', '1']);
const FALSE_WORDS = new Set(['no', 'n', 'false', 'off', '0']);

/** For codecs when nothing can be read (tests, or a question that reads nothing). */
export const NO_FILES: QuestionContext = { files: { read: async () => null, meta: async () => null } };

/** Limits for a text question built without one (tests, bare questions). */
export const DEFAULT_MAX_LENGTH = 256;
export const DEFAULT_MAX_LINES_LENGTH = 65_536;
/** A password longer than this is a paste gone wrong, not a password. */
export const PASSWORD_MAX_LENGTH = 4096;

const refuse = (message: string): Validation<never> => ({ ok: false, message });

// --- characters ---------------------------------------------------------------

const LINE_BREAK = /[\n\r\u0085\u2028\u2029]/;
/** C0 and C1 controls and DEL; the direction overrides that make text read differently from what it holds. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const CONTROL_IN_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

function describeCharacter(ch: string): string {
  const code = `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  if (ch === '\u001b' || ch === '\u009b') return `${code}, an escape that starts a terminal control sequence`;
  if (ch === '\t') return `${code}, a tab`;
  if (/[\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(ch)) return `${code}, an invisible direction mark`;
  return code;
}

/**
 * Why a text holds characters no answer may hold, or undefined. `secret`
 * leaves out where the character is, so a message says nothing of a password.
 */
export function characterProblem(value: string, options: { multiline?: boolean; secret?: boolean } = {}): string | undefined {
  if (value.includes('\u0000')) return 'must not contain a NUL character';
  if (!options.multiline && LINE_BREAK.test(value)) {
    return options.secret ? 'must be one line: it holds a line break, which chpasswd would read as another account\'s line' : 'must be one line (it holds a line break)';
  }
  const found = (options.multiline ? CONTROL_IN_LINES : CONTROL).exec(value);
  if (found) return `must not contain control characters (it holds ${describeCharacter(found[0])})`;
  return undefined;
}

/** Length in characters as a person counts them (code points, not UTF-16 units). */
const lengthOf = (value: string) => Array.from(value).length;

function lengthProblem(value: string, max: number, whoLimits?: string): string | undefined {
  // Cheap first test: a string of more UTF-16 units may still have few enough characters.
  if (value.length <= max) return undefined;
  const n = lengthOf(value);
  if (n <= max) return undefined;
  return whoLimits ? `is ${n} characters long; ${whoLimits} allows at most ${max}` : `is ${n} characters long; at most ${max} are allowed`;
}

// --- codecs -------------------------------------------------------------------

export interface TextOptions {
  /** At most this many characters (after resolving, e.g. a key file's content). */
  maxLength: number;
  /** Who sets that limit, when it is not pve-baseline (e.g. 'Linux' for an account name): the refusal says so. */
  limitSetBy?: string;
  /** An empty answer is allowed (and kept as ""). */
  optional?: boolean;
  /** Line breaks are allowed (pasted SSH keys); tabs too. */
  multiline?: boolean;
  /** Turn what was typed into the answer itself (e.g. a path into the keys the file holds). */
  resolve?: (value: string, ctx: QuestionContext, answers: Answers) => Promise<string | { problem: string }>;
  /** Checks beyond the characters and the length: the step's own rules. */
  check?: Validator<string>;
}

function readText(raw: unknown, multiline: boolean): string | undefined {
  if (raw === null || raw === undefined) return '';
  if (typeof raw === 'number' && Number.isFinite(raw)) return String(raw);
  if (typeof raw !== 'string') return undefined;
  return multiline ? raw.replace(/\r\n?/g, '\n').trim() : raw.trim();
}

async function decodeText(raw: unknown, o: TextOptions, answers: Answers, ctx: QuestionContext, secret: boolean): Promise<Validation<string>> {
  const multiline = o.multiline ?? false;
  const typed = readText(raw instanceof Secret ? raw.reveal() : raw, multiline);
  if (typed === undefined) return refuse('wants text');
  const typedProblem = lengthProblem(typed, o.maxLength, o.limitSetBy) ?? characterProblem(typed, { multiline, secret });
  if (typedProblem) return refuse(typedProblem);
  if (typed === '') return o.optional ? { ok: true, value: '' } : refuse('must not be empty');
  let value = typed;
  if (o.resolve) {
    const resolved = await o.resolve(typed, ctx, answers);
    if (typeof resolved !== 'string') return refuse(resolved.problem);
    value = multiline ? resolved.replace(/\r\n?/g, '\n').trim() : resolved.trim();
    // What a file held is held to the same rules as what was typed.
    const problem = lengthProblem(value, o.maxLength, o.limitSetBy) ?? characterProblem(value, { multiline, secret });
    if (problem) return refuse(problem);
    if (value === '') return refuse('must not be empty');
  }
  const problem = await o.check?.(value, answers, ctx);
  return problem ? refuse(problem) : { ok: true, value };
}

export const codecs = {
  /** Text on one line (or several, for pasted keys), with a length limit and no control characters. */
  text(o: TextOptions): Codec<string> {
    return { secret: false, decode: (raw, answers, ctx) => decodeText(raw, o, answers, ctx, false) };
  },

  /** Text that is a secret (a password hash): the same rules, kept as a Secret, never journaled or printed. */
  secretText(o: TextOptions): Codec<Secret> {
    return {
      secret: true,
      async decode(raw, answers, ctx) {
        const v = await decodeText(raw, o, answers, ctx, true);
        return v.ok ? { ok: true, value: new Secret(v.value) } : v;
      },
    };
  },

  /** A password: not trimmed, one line, no control characters, from minLength to maxLength characters. */
  password(o: { minLength: number; maxLength?: number; check?: (value: string, answers: Answers) => string | undefined }): Codec<Secret> {
    const max = o.maxLength ?? PASSWORD_MAX_LENGTH;
    return {
      secret: true,
      async decode(raw, answers) {
        const value = raw instanceof Secret ? raw.reveal() : raw;
        if (typeof value !== 'string') return refuse('wants a password (text)');
        const problem = characterProblem(value, { secret: true }) ?? (lengthOf(value) < o.minLength ? `must be at least ${o.minLength} characters long` : undefined);
        if (problem) return refuse(problem);
        if (lengthOf(value) > max) return refuse(`must be at most ${max} characters long`);
        const own = o.check?.(value, answers);
        return own ? refuse(own) : { ok: true, value: new Secret(value) };
      },
    };
  },

  /** A whole number from min to max; from a YAML number or typed digits. */
  integer(o: { min: number; max: number; unit?: string }): Codec<number> {
    const wants = `wants a whole number${o.unit ? ` of ${o.unit}` : ''} from ${o.min} to ${o.max}`;
    return {
      secret: false,
      async decode(raw) {
        const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d{1,15}\s*$/.test(raw) ? Number(raw) : NaN;
        return Number.isSafeInteger(n) && n >= o.min && n <= o.max ? { ok: true, value: n } : refuse(wants);
      },
      show: (value) => String(value),
    };
  },

  /** One of the given values, exactly as written. */
  select<V extends string>(values: readonly V[]): Codec<V> {
    return {
      secret: false,
      async decode(raw) {
        return typeof raw === 'string' && (values as readonly string[]).includes(raw) ? { ok: true, value: raw as V } : refuse(`must be one of: ${values.join(', ')}`);
      },
    };
  },

  yesNo(): Codec<boolean> {
    return {
      secret: false,
      async decode(raw) {
        if (typeof raw === 'boolean') return { ok: true, value: raw };
        const word = typeof raw === 'string' || typeof raw === 'number' ? String(raw).trim().toLowerCase() : '';
        if (TRUE_WORDS.has(word)) return { ok: true, value: true };
        if (FALSE_WORDS.has(word)) return { ok: true, value: false };
        return refuse('wants yes or no');
      },
    };
  },

  /**
   * A list of words (user or group names): typed separated by spaces or
   * commas, or a YAML list. Each word must match `pattern`; duplicates are
   * dropped.
   */
  words(o: { what: string; pattern: RegExp; maxWordLength: number; maxWords: number; optional?: boolean; check?: Validator<string[]> }): Codec<string[]> {
    return {
      secret: false,
      async decode(raw, answers, ctx) {
        const listed = wordsOf(raw);
        if (typeof listed === 'string') return refuse(listed);
        for (const word of listed) {
          const problem = characterProblem(word);
          if (problem) return refuse(`${JSON.stringify(word)} ${problem}`);
          if (lengthOf(word) > o.maxWordLength) return refuse(`${JSON.stringify(word.slice(0, 40))}... is longer than ${o.maxWordLength} characters`);
          if (!o.pattern.test(word)) return refuse(`${JSON.stringify(word)} is not ${o.what}`);
        }
        if (!listed.length && !o.optional) return refuse('must not be empty');
        if (listed.length > o.maxWords) return refuse(`at most ${o.maxWords} may be given`);
        const problem = await o.check?.(listed, answers, ctx);
        return problem ? refuse(problem) : { ok: true, value: listed };
      },
      show: (value) => value.join(' '),
    };
  },

  /**
   * A list of IPv4 and IPv6 networks (10.0.0.0/24, fd00::/64) or single
   * addresses, as sshd's Match Address takes them. A network with host bits
   * set is refused naming the network meant (sshd itself refuses it, but only
   * once the new configuration is being tested); so is a network of every
   * address (0.0.0.0/0, ::/0), which restricts nothing: `everything` says
   * what to choose instead.
   */
  /** `normalise`: the form to keep each network in (e.g. as Proxmox stores ipset entries: 10.0.0.5/32 as 10.0.0.5). */
  cidrs(o: { maxNetworks: number; everything: string; normalise?: (network: string) => string }): Codec<string[]> {
    return {
      secret: false,
      async decode(raw) {
        const listed = wordsOf(raw);
        if (typeof listed === 'string') return refuse(listed);
        if (!listed.length) return refuse('must not be empty (wanted e.g. 10.0.0.0/24)');
        if (listed.length > o.maxNetworks) return refuse(`at most ${o.maxNetworks} networks may be given`);
        const out: string[] = [];
        for (const text of listed) {
          const network = parseNetwork(text);
          if ('problem' in network) return refuse(network.problem);
          if (network.prefix === 0) return refuse(`${JSON.stringify(text)} is every ${network.kind === 'ipv4' ? 'IPv4' : 'IPv6'} address, which restricts nothing; ${o.everything}`);
          const kept = o.normalise ? o.normalise(network.text) : network.text;
          if (!out.includes(kept)) out.push(kept);
        }
        return { ok: true, value: out };
      },
      show: (value) => value.join(' '),
    };
  },
};

/** Words from a typed line (spaces or commas between them) or a YAML list; a string says why not. */
function wordsOf(raw: unknown): string[] | string {
  if (raw === null || raw === undefined) return [];
  if (Array.isArray(raw)) {
    if (!raw.every((w) => typeof w === 'string' || typeof w === 'number')) return 'wants a list of words';
    return [...new Set(raw.map((w) => String(w).trim()).filter(Boolean))];
  }
  if (typeof raw !== 'string') return 'wants words separated by spaces';
  if (raw.length > DEFAULT_MAX_LINES_LENGTH) return `is ${raw.length} characters long; at most ${DEFAULT_MAX_LINES_LENGTH} are allowed`;
  if (LINE_BREAK.test(raw)) return 'must be one line (it holds a line break)';
  return [...new Set(raw.split(/[ ,]+/).filter(Boolean))];
}

export interface Network {
  kind: 'ipv4' | 'ipv6';
  prefix: number;
  /** As sshd should be given it: the address in canonical form, with /prefix unless it is a single address as typed. */
  text: string;
}

/**
 * One network as an operator typed it ("10.0.0.0/24", "192.0.2.7",
 * "fd00::/64"), or what is wrong with it: not an address, a bad prefix, host
 * bits set (naming the network meant), an IPv4-mapped IPv6 network (sshd
 * sees IPv4 clients as IPv4), a zone index.
 */
export function parseNetwork(text: string): Network | { problem: string } {
  const quoted = JSON.stringify(text);
  const wanted = `${quoted} is not an address or a network (wanted e.g. 10.0.0.0/24 or fd00::/64)`;
  const [address = '', prefixText, extra] = text.split('/');
  if (extra !== undefined || address === '') return { problem: wanted };
  if (address.includes('%')) return { problem: `${quoted}: a zone index (%...) cannot be matched by sshd; give the network without it` };
  const kind = ipaddr.IPv4.isValidFourPartDecimal(address) ? 'ipv4' : ipaddr.IPv6.isValid(address) && address.includes(':') ? 'ipv6' : undefined;
  if (!kind) return { problem: wanted };
  const bits = kind === 'ipv4' ? 32 : 128;
  const parsed = kind === 'ipv4' ? ipaddr.IPv4.parse(address) : ipaddr.IPv6.parse(address);
  if (parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress()) {
    return { problem: `${quoted} is an IPv4-mapped IPv6 address; sshd sees IPv4 clients as IPv4: write ${parsed.toIPv4Address().toString()} instead` };
  }
  if (prefixText === undefined) return { kind, prefix: bits, text: parsed.toString() };
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > bits) return { problem: `${quoted}: the prefix must be a number from 0 to ${bits}` };
  const prefix = Number(prefixText);
  const network = `${(kind === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text)).toString()}/${prefix}`;
  if (network !== `${parsed.toString()}/${prefix}`) return { problem: `${quoted} has host bits set: the network is ${network}` };
  return { kind, prefix, text: network };
}

// --- questions ----------------------------------------------------------------

/** Seconds an operator may choose to prove access in, before the node reverts a change on its own. */
export const REVERT_WINDOW = { min: 30, max: 1800, default: DEFAULT_REVERT_SECONDS } as const;

interface Asked<F, K extends string> {
  id: K;
  prompt: string;
  help?: string;
  when?: (answers: Answers, facts: F) => boolean;
  fileOnly?: boolean;
}

/** Builders of a step's questions, each with its codec; the step's answers type checks what they give. */
export const ask = {
  /**
   * A structured answer only an answers file gives (fileOnly): `decode` checks
   * the whole of it, with the step's facts when the node has been probed,
   * and lists every problem naming its field.
   */
  document<F, K extends string, T extends AnswerDocument>(
    q: Asked<F, K> & { decode: (raw: unknown, ctx: QuestionContext) => { ok: true; value: T } | { ok: false; problems: string[] } },
  ): TextQuestion<F, T, K> {
    const { decode, ...rest } = q;
    return {
      ...rest,
      kind: 'text',
      fileOnly: true,
      codec: {
        secret: false,
        async decode(raw, _answers, ctx) {
          const r = decode(raw, ctx);
          return r.ok ? { ok: true, value: r.value } : refuse(r.problems.join('; '));
        },
      },
    };
  },

  text<F, K extends string>(q: Asked<F, K> & TextOptions & { detect?: (facts: F) => string | undefined; details?: (value: string, ctx: QuestionContext) => Promise<AnswerDetails> }): TextQuestion<F, string, K> {
    const { maxLength, limitSetBy, check, resolve, ...rest } = q;
    return { ...rest, kind: 'text', codec: codecs.text({ maxLength, ...(limitSetBy ? { limitSetBy } : {}), ...(q.optional ? { optional: true } : {}), ...(q.multiline ? { multiline: true } : {}), ...(resolve ? { resolve } : {}), ...(check ? { check } : {}) }) };
  },

  /** A secret given only in an answers file (e.g. a crypt hash): a Secret, never journaled. */
  secretText<F, K extends string>(q: Asked<F, K> & TextOptions): TextQuestion<F, Secret, K> {
    const { maxLength, check, resolve, ...rest } = q;
    return { ...rest, kind: 'text', codec: codecs.secretText({ maxLength, ...(check ? { check } : {}), ...(resolve ? { resolve } : {}) }) };
  },

  password<F, K extends string>(q: Asked<F, K> & { minLength: number; maxLength?: number; check?: (value: string, answers: Answers) => string | undefined }): PasswordQuestion<F, K> {
    const { minLength, maxLength, check, ...rest } = q;
    return { ...rest, kind: 'password', minLength, codec: codecs.password({ minLength, ...(maxLength ? { maxLength } : {}), ...(check ? { check } : {}) }) };
  },

  integer<F, K extends string>(q: Asked<F, K> & { min: number; max: number; unit?: string; detect?: (facts: F) => number | undefined }): TextQuestion<F, number, K> {
    const { min, max, unit, ...rest } = q;
    return { ...rest, kind: 'text', codec: codecs.integer({ min, max, ...(unit ? { unit } : {}) }) };
  },

  /**
   * The revert window of a change that can cut access: 30 s to 30 minutes, 180 s unless the
   * operator chooses, in seconds (the node puts the change back unless access is proven in time).
   */
  revertWindow<F, K extends string>(q: Asked<F, K>): TextQuestion<F, number, K> {
    return ask.integer({ ...q, detect: () => REVERT_WINDOW.default, min: REVERT_WINDOW.min, max: REVERT_WINDOW.max, unit: 'seconds' });
  },

  select<F, K extends string, const V extends string>(q: Asked<F, K> & { choices: readonly Choice<V>[]; detect?: (facts: F) => NoInfer<V> | undefined }): SelectQuestion<F, NoInfer<V>, K> {
    return { ...q, kind: 'select', choices: [...q.choices], codec: codecs.select(q.choices.map((c) => c.value)) };
  },

  yesNo<F, K extends string>(q: Asked<F, K> & { detect?: (facts: F) => boolean | undefined }): ConfirmQuestion<F, K> {
    return { ...q, kind: 'confirm', codec: codecs.yesNo() };
  },

  words<F, K extends string>(
    q: Asked<F, K> & { what: string; pattern: RegExp; maxWordLength: number; maxWords: number; optional?: boolean; check?: Validator<string[]>; detect?: (facts: F) => string[] | undefined },
  ): TextQuestion<F, string[], K> {
    const { what, pattern, maxWordLength, maxWords, check, ...rest } = q;
    return { ...rest, kind: 'text', codec: codecs.words({ what, pattern, maxWordLength, maxWords, ...(q.optional ? { optional: true } : {}), ...(check ? { check } : {}) }) };
  },

  cidrs<F, K extends string>(q: Asked<F, K> & { maxNetworks: number; everything: string; normalise?: (network: string) => string; detect?: (facts: F) => string[] | undefined }): TextQuestion<F, string[], K> {
    const { maxNetworks, everything, normalise, ...rest } = q;
    return { ...rest, kind: 'text', codec: codecs.cidrs({ maxNetworks, everything, ...(normalise ? { normalise } : {}) }) };
  },
};

// --- the engine's side ----------------------------------------------------------

const defaults = new WeakMap<Question<any>, Codec>();

/** A question's codec: its own, or for a bare question (tests, examples) the default of its kind. */
export function codecOf(question: Question<any>): Codec {
  if (question.codec) return question.codec as Codec;
  let codec = defaults.get(question);
  if (!codec) {
    switch (question.kind) {
      case 'text': {
        const { multiline, optional, resolve, validate } = question;
        codec = codecs.text({ maxLength: multiline ? DEFAULT_MAX_LINES_LENGTH : DEFAULT_MAX_LENGTH, ...(multiline ? { multiline } : {}), ...(optional ? { optional } : {}), ...(resolve ? { resolve } : {}), ...(validate ? { check: validate } : {}) });
        break;
      }
      case 'password':
        codec = codecs.password({ minLength: question.minLength, ...(question.validate ? { check: question.validate } : {}) });
        break;
      case 'select':
        codec = codecs.select(question.choices.map((c) => c.value));
        break;
      case 'confirm':
        codec = codecs.yesNo();
        break;
    }
    defaults.set(question, codec);
  }
  return codec;
}

/** Check and type one answer: the only way any answer gets to a step. */
export async function validateAnswer(question: Question<any>, raw: unknown, answers: Answers = {}, ctx: QuestionContext = NO_FILES): Promise<Validation> {
  return codecOf(question).decode(raw, answers, ctx);
}

/** The detected default of a question as the wizard offers it, when it has one (never for a secret). */
export function detectedDefault<F>(question: Question<F>, facts: F): AnswerValue | undefined {
  if (question.kind === 'password' || isSecretQuestion(question)) return undefined;
  const value = question.detect?.(facts);
  if (value === undefined) return undefined;
  const codec = codecOf(question);
  return codec.show ? codec.show(value) : value;
}

/** The questions that apply given the answers so far. */
export function applicableQuestions<F>(questions: readonly Question<F>[], answers: Answers, facts: F): Question<F>[] {
  return questions.filter((q) => !q.when || q.when(answers, facts));
}
