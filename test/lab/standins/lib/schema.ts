/**
 * A small emulation of PVE::JSONSchema (pve-common): parameter schemas, the
 * formats pveum/pvesh use, check_prop's error texts, and PVE::Exception's
 * stringification. Texts come from src/pve/messages.ts.
 */
import { msg } from '../../../../src/pve/messages.ts';
import {
  checkEmail,
  checkGroupid,
  checkNodeName,
  checkPoolid,
  checkRealm,
  checkRoleid,
  checkStorageId,
  checkTokenid,
  checkUserid,
  checkVmid,
} from '../../../../src/pve/names.ts';
import { isValidPrivilege } from '../../../../src/pve/privileges.ts';
import { splitList } from '../../../../src/pve/user-cfg.ts';

export interface Prop {
  type: 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | 'null';
  format?: string;
  optional?: boolean;
  default?: unknown;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  enum?: readonly string[];
  /** this property requires that one */
  requires?: string;
  title?: string;
  renderer?: 'timestamp' | 'duration' | 'bytes' | 'fraction_as_percentage';
  print_width?: number;
  properties?: Record<string, Prop>;
  items?: Prop;
  description?: string;
}

export type Params = Record<string, string | number | undefined>;

/** PVE::Exception */
export class PveError extends Error {
  code: number | undefined;
  errors: Record<string, string> | undefined;
  usage: string | undefined;
  constructor(message: string, opts: { code?: number; errors?: Record<string, string>; usage?: string } = {}) {
    super(message);
    this.code = opts.code;
    this.errors = opts.errors;
    this.usage = opts.usage;
  }
  get isParamExc(): boolean {
    return this.code === 400;
  }
  /** PVE::Exception::stringify ($msg always ends in "\n" here, as the Perl dies do) */
  stringify(): string {
    let out = this.code ? `${this.code} ${this.message}` : this.message;
    if (!out.endsWith('\n')) out += '\n';
    if (this.errors) for (const k of Object.keys(this.errors).sort()) out += `${k}: ${this.errors[k]}\n`;
    if (this.usage) {
      out += this.usage;
      if (!out.endsWith('\n')) out += '\n';
    }
    return out;
  }
}

/** die "text\n" */
export const die = (text: string): never => {
  throw new PveError(`${text}\n`);
};

/** raise_param_exc({...}) */
export const paramExc = (errors: Record<string, string>): never => {
  throw new PveError(`${msg.paramVerificationFailed()}\n`, { code: 400, errors });
};

/** raise("...\n", code => 400) */
export const badRequest = (text: string): never => {
  throw new PveError(`${text}\n`, { code: 400 });
};

type Verifier = (v: string) => string | null;

const listOf =
  (one: Verifier): Verifier =>
  (v) => {
    for (const item of splitList(v)) {
      const e = one(item);
      if (e) return e;
    }
    return null;
  };

export const FORMATS: Record<string, Verifier> = {
  'pve-userid': checkUserid,
  'pve-groupid': checkGroupid,
  'pve-roleid': checkRoleid,
  'pve-poolid': checkPoolid,
  'pve-realm': checkRealm,
  'pve-tokenid': checkTokenid,
  'pve-node': checkNodeName,
  'pve-vmid': checkVmid,
  'pve-storage-id': checkStorageId,
  'email-opt': checkEmail,
  'pve-priv': (p) => (isValidPrivilege(p) ? null : msg.privInvalid(p)),
  'pve-userid-list': listOf(checkUserid),
  'pve-groupid-list': listOf(checkGroupid),
  'pve-roleid-list': listOf(checkRoleid),
  'pve-tokenid-list': listOf(checkTokenid),
  'pve-priv-list': listOf((p) => (isValidPrivilege(p) ? null : msg.privInvalid(p))),
  'pve-vmid-list': listOf(checkVmid),
  'pve-storage-id-list': listOf(checkStorageId),
};

const isInteger = (v: string) => /^\s*[+-]?\d+\s*$/.test(v);
const isNumber = (v: string) => /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v);

/** parse_boolean */
export function parseBoolean(v: string): 0 | 1 | undefined {
  if (/^(1|on|yes|true)$/i.test(v)) return 1;
  if (/^(0|off|no|false)$/i.test(v)) return 0;
  return undefined;
}

/** check_prop for one scalar; returns the error text or null */
function checkProp(value: string | number, schema: Prop): string | null {
  const v = String(value);
  switch (schema.type) {
    case 'boolean':
      if (v !== '0' && v !== '1') return msg.typeCheckFailed('boolean', v);
      break;
    case 'integer':
      if (!isInteger(v)) return msg.typeCheckFailed('integer', v);
      break;
    case 'number':
      if (!isNumber(v)) return msg.typeCheckFailed('number', v);
      break;
    default:
      break;
  }
  if (schema.format) {
    const verify = FORMATS[schema.format];
    const e = verify ? verify(v) : null;
    // the verifiers die "...\n": the newline shows as a blank line before the usage
    if (e) return `${msg.invalidFormat(e)}\n`;
  }
  if (schema.pattern && !new RegExp(`^(?:${schema.pattern})$`).test(v)) return msg.patternMismatch();
  if (schema.maxLength !== undefined && [...v].length > schema.maxLength) return msg.maxLength(schema.maxLength);
  if (schema.minLength !== undefined && [...v].length < schema.minLength) return msg.minLength(schema.minLength);
  if (isNumber(v)) {
    if (schema.maximum !== undefined && Number(v) > schema.maximum) return msg.maximum(schema.maximum);
    if (schema.minimum !== undefined && Number(v) < schema.minimum) return msg.minimum(schema.minimum);
  }
  if (schema.enum && !schema.enum.includes(v)) return msg.notInEnum(v, schema.enum);
  return null;
}

/** PVE::JSONSchema::validate($param, {properties, additionalProperties => 0}) */
export function validateParams(params: Params, props: Record<string, Prop>): void {
  const errors: Record<string, string> = {};
  const add = (k: string, e: string) => {
    if (!(k in errors)) errors[k] = e; // add_error keeps the first error per key
  };
  for (const [name, schema] of Object.entries(props)) {
    const value = params[name];
    if (value === undefined) {
      if (!schema.optional) add(name, msg.propertyMissing());
      continue;
    }
    const e = checkProp(value, schema);
    if (e) add(name, e);
  }
  for (const name of Object.keys(params)) {
    if (params[name] === undefined) continue;
    const schema = props[name];
    if (!schema) add(name, msg.propertyNotDefined());
    else if (schema.requires && params[schema.requires] === undefined) add(schema.requires, msg.requiresProperty(name));
  }
  if (Object.keys(errors).length > 0) paramExc(errors);
}

/** Convert validated string params to the types the handlers expect. */
export function coerce(params: Params, props: Record<string, Prop>): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    const t = props[k]?.type;
    out[k] = (t === 'integer' || t === 'number' || t === 'boolean') && typeof v === 'string' ? Number(v) : v;
  }
  return out;
}

// ---------------------------------------------------------------------------
// standard schema pieces (get_standard_option)

export const opt = {
  userid: (): Prop => ({ type: 'string', format: 'pve-userid', maxLength: 64 }),
  groupid: (): Prop => ({ type: 'string', format: 'pve-groupid' }),
  roleid: (): Prop => ({ type: 'string', format: 'pve-roleid' }),
  poolid: (): Prop => ({ type: 'string', format: 'pve-poolid' }),
  node: (): Prop => ({ type: 'string', format: 'pve-node' }),
  tokenSubid: (): Prop => ({ type: 'string', pattern: '[A-Za-z][A-Za-z0-9\\.\\-_]+' }),
  comment: (maxLength?: number): Prop => ({ type: 'string', optional: true, ...(maxLength ? { maxLength } : {}) }),
  bool: (def?: number): Prop => ({ type: 'boolean', optional: true, ...(def !== undefined ? { default: def } : {}) }),
};

/** the output options every formatting command accepts ($PVE::RESTHandler::standard_output_options) */
export const OUTPUT_OPTIONS: Record<string, Prop> = {
  'output-format': { type: 'string', enum: ['text', 'json', 'json-pretty', 'yaml'], optional: true, default: 'text' },
  noborder: { type: 'boolean', optional: true },
  noheader: { type: 'boolean', optional: true },
  quiet: { type: 'boolean', optional: true },
  'human-readable': { type: 'boolean', optional: true, default: 1 },
};
