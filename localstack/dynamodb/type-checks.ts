/**
 * dynalite's request type check (`validations.checkTypes`), the same function made cheap.
 *
 * Every DynamoDB request passes through it before anything else, and it walks every attribute
 * value of every item: for a 20,000-node dispatch (800 `BatchWriteItem`s of 25 items) it was
 * about a sixth of the local DynamoDB's CPU. dynalite's version re-parses each type string with
 * a regular expression, rebuilds the `AttributeValue` type description (a literal of nine
 * nested objects), and makes two closures per call, for every value. This one parses each type
 * string once and shares the descriptions, which dynalite never mutates; everything else is
 * dynalite 4.0's code as it is (`node_modules/dynalite/validations/index.js`, MIT): the same
 * conversions, the same error messages, the same deletion of unknown and null fields from the
 * request. `test/localstack/dynamodb-type-checks.test.ts` compares the two on every action's
 * types with thousands of generated requests, valid and not.
 *
 * Hand-written rather than a library: what it must match is dynalite's own behaviour, errors
 * included, which a general schema validator would not reproduce.
 */

/** A type as dynalite's validation tables write it: a name (`'String'`, `'Map<AttributeValue>'`) or a description. */
type TypeSpec = string | TypeDescription;
interface TypeDescription {
  readonly type?: string;
  readonly children?: TypeSpec | Record<string, TypeSpec>;
  readonly [key: string]: unknown;
}

/** A type name split as dynalite splits it: `Map<AttributeValue>` → `Map`, `AttributeValue`. */
interface ParsedName {
  readonly base: string;
  readonly subtype: string | undefined;
}

/** dynalite's description of an `AttributeValue` (its `AttrStruct` case), built once. */
const ATTRIBUTE_VALUE_CHILDREN: Record<string, TypeSpec> = {
  S: 'String',
  B: 'Blob',
  N: 'String',
  BOOL: 'Boolean',
  NULL: 'Boolean',
  BS: { type: 'List', children: 'Blob' },
  NS: { type: 'List', children: 'String' },
  SS: { type: 'List', children: 'String' },
  L: { type: 'List', children: 'AttrStruct<ValueStruct>' },
  M: { type: 'Map<AttributeValue>', children: 'AttrStruct<ValueStruct>' },
};

const parsedNames = new Map<string, ParsedName>();
const wrappedChildren = new Map<string, TypeDescription>();
const attributeStructs = new Map<string | undefined, TypeDescription>();

function parseName(type: string): ParsedName {
  let parsed = parsedNames.get(type);
  if (!parsed) {
    const match = type.match(/(.+?)<(.+)>$/);
    parsed = match ? { base: match[1]!, subtype: match[2]! } : { base: type, subtype: undefined };
    parsedNames.set(type, parsed);
  }
  return parsed;
}

/** `{ type: children }` for a children name, shared: dynalite only reads it. */
function wrapChildren(name: string): TypeDescription {
  let wrapped = wrappedChildren.get(name);
  if (!wrapped) {
    wrapped = { type: name };
    wrappedChildren.set(name, wrapped);
  }
  return wrapped;
}

function attributeStruct(subtype: string | undefined): TypeDescription {
  let struct = attributeStructs.get(subtype);
  if (!struct) {
    struct = { type: `${subtype}<AttributeValue>`, children: ATTRIBUTE_VALUE_CHILDREN };
    attributeStructs.set(subtype, struct);
  }
  return struct;
}

function typeError(msg: string): Error {
  const err = new Error(msg) as Error & { statusCode?: number; body?: unknown };
  err.statusCode = 400;
  err.body = { __type: 'com.amazon.coral.service#SerializationException', Message: msg };
  return err;
}

/**
 * Checks and converts `data` against `types` as dynalite's `checkTypes` does: drops fields the
 * types do not name and null fields (from `data` itself), converts what DynamoDB converts, and
 * throws dynalite's `SerializationException` for what it refuses.
 */
export function checkTypes(data: Record<string, unknown>, types: Record<string, TypeSpec>): Record<string, unknown> {
  for (const key in data) {
    if (!types[key] || data[key] == null) delete data[key];
  }
  const newData: Record<string, unknown> = {};
  for (const key of Object.keys(types)) {
    const val = checkType(data[key], types[key]!);
    if (val != null) newData[key] = val;
  }
  return newData;
}

function checkType(val: unknown, spec: TypeSpec): unknown {
  if (val == null) return null;
  let children = (spec as TypeDescription).children;
  if (typeof children == 'string') children = wrapChildren(children);
  let type: unknown = spec;
  if ((spec as TypeDescription).type) type = (spec as TypeDescription).type;
  // dynalite calls `type.match` on whatever the table holds; a table entry that is neither a
  // name nor a described type fails there, and here the same way.
  const { base, subtype } = typeof type === 'string' ? parseName(type) : (type as { match(re: RegExp): never }).match(/(.+?)<(.+)>$/);

  if (base == 'AttrStruct') return checkType(val, attributeStruct(subtype));

  switch (base) {
    case 'Boolean':
      switch (typeof val) {
        case 'number':
          throw typeError((val % 1 === 0 ? 'NUMBER_VALUE' : 'DECIMAL_VALUE') + ' cannot be converted to ' + base);
        case 'string': {
          // 'true'/'false'/'1'/'0'/'no'/'yes' seem to convert fine
          const upper = val.toUpperCase();
          if (['TRUE', '1', 'YES'].includes(upper)) return true;
          if (['FALSE', '0', 'NO'].includes(upper)) return false;
          throw typeError('Unexpected token received from parser');
        }
        case 'object':
          if (Array.isArray(val)) throw typeError('Unrecognized collection type class java.lang.' + base);
          throw typeError('Start of structure or map found where not expected');
      }
      return val;
    case 'Short':
    case 'Integer':
    case 'Long':
    case 'Double':
      switch (typeof val) {
        case 'boolean':
          throw typeError((val ? 'TRUE_VALUE' : 'FALSE_VALUE') + ' cannot be converted to ' + base);
        case 'number':
          return base != 'Double' ? Math.floor(val) : val;
        case 'string':
          throw typeError('STRING_VALUE cannot be converted to ' + base);
        case 'object':
          if (Array.isArray(val)) throw typeError('Unrecognized collection type class java.lang.' + base);
          throw typeError('Start of structure or map found where not expected');
      }
      return val;
    case 'String':
      switch (typeof val) {
        case 'boolean':
          throw typeError((val ? 'TRUE_VALUE' : 'FALSE_VALUE') + ' cannot be converted to ' + base);
        case 'number':
          throw typeError((val % 1 === 0 ? 'NUMBER_VALUE' : 'DECIMAL_VALUE') + ' cannot be converted to ' + base);
        case 'object':
          if (Array.isArray(val)) throw typeError('Unrecognized collection type class java.lang.' + base);
          throw typeError('Start of structure or map found where not expected');
      }
      return val;
    case 'Blob':
      switch (typeof val) {
        case 'boolean':
        case 'number':
          throw typeError('only base-64-encoded strings are convertible to bytes');
        case 'object':
          if (Array.isArray(val)) throw typeError('Unrecognized collection type class java.nio.ByteBuffer');
          throw typeError('Start of structure or map found where not expected');
      }
      if ((val as string).length % 4) throw typeError('Base64 encoded length is expected a multiple of 4 bytes but found: ' + (val as string).length);
      if (Buffer.from(val as string, 'base64').toString('base64') != val) throw typeError('Invalid last non-pad Base64 character dectected');
      return val;
    case 'List':
      collection(val, 'Unexpected field type', true, NOT_A_LIST, subtype);
      return (val as unknown[]).map((child) => checkType(child, children as TypeSpec));
    case 'ParameterizedList':
      collection(val, PARAMETERIZED_CAST, true, NOT_A_LIST, subtype);
      return (val as unknown[]).map((child) => checkType(child, children as TypeSpec));
    case 'ParameterizedMap':
      collection(val, PARAMETERIZED_CAST, false, NOT_AN_ATTRIBUTE_MAP, subtype);
      return mapValues(val as Record<string, unknown>, children as TypeSpec);
    case 'Map':
      collection(val, 'Unexpected field type', false, NOT_A_MAP, subtype);
      return mapValues(val as Record<string, unknown>, children as TypeSpec);
    case 'ValueStruct':
      collection(val, 'Unexpected value type in payload', false, NOT_A_STRUCT, subtype);
      return checkTypes(val as Record<string, unknown>, children as Record<string, TypeSpec>);
    case 'FieldStruct':
      collection(val, 'Unexpected field type', false, NOT_A_STRUCT, subtype);
      return checkTypes(val as Record<string, unknown>, children as Record<string, TypeSpec>);
    default:
      throw new Error('Unknown type: ' + base);
  }
}

/** dynalite's refusal for a scalar passed where a list or map cannot be cast: its Java cast error. */
const PARAMETERIZED_CAST =
  "class sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl cannot be cast to class java.lang.Class (sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl and java.lang.Class are in module java.base of loader 'bootstrap')";

/** dynalite's messages for an object of the wrong kind of collection, given the type's subtype. */
const NOT_A_LIST = (): string => 'Start of structure or map found where not expected';
const NOT_AN_ATTRIBUTE_MAP = (): string => 'Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>';
const NOT_A_MAP = (subtype: string | undefined): string =>
  'Unrecognized collection type java.util.Map<java.lang.String, ' + (subtype!.includes('.') ? subtype : 'com.amazonaws.dynamodb.v20120810.' + subtype) + '>';
const NOT_A_STRUCT = (subtype: string | undefined): string => 'Unrecognized collection type class com.amazonaws.dynamodb.v20120810.' + subtype;

/**
 * dynalite's two refusals of a value where a collection belongs: a scalar (`scalar`), or an
 * object of the other kind (`wrongKind(subtype)`, built only when thrown; no closure per call,
 * since this runs for every attribute value of every request). `null` counts as an object, as
 * in dynalite's `typeof` switch.
 */
function collection(val: unknown, scalar: string, wantArray: boolean, wrongKind: (subtype: string | undefined) => string, subtype: string | undefined): void {
  const type = typeof val;
  if (type === 'boolean' || type === 'number' || type === 'string') throw typeError(scalar);
  if (type === 'object' && Array.isArray(val) !== wantArray) throw typeError(wrongKind(subtype));
}

function mapValues(val: Record<string, unknown>, children: TypeSpec): Record<string, unknown> {
  const newVal: Record<string, unknown> = {};
  for (const key of Object.keys(val)) newVal[key] = checkType(val[key], children);
  return newVal;
}
