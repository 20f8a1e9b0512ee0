/** The parts of an OpenAPI 3.0 schema the service's document uses. */
export interface Schema {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  nullable?: boolean;
  oneOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; responses: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> }> }>>;
  components: { schemas: Record<string, Schema> };
}

export function resolveRef(doc: OpenApiDocument, schema: Schema): Schema {
  if (!schema.$ref) return schema;
  const name = schema.$ref.replace('#/components/schemas/', '');
  const target = doc.components.schemas[name];
  if (!target) throw new Error(`${schema.$ref} is not in components.schemas`);
  return resolveRef(doc, target);
}

/**
 * Where `value` departs from `schema` (empty when it conforms). Stricter than JSON Schema on
 * purpose: an object schema that lists `properties` is closed unless it says
 * `additionalProperties`, so an answer with a key the document does not name is a departure,
 * as is a required key it lacks or a number that is not an integer where one is promised.
 */
export function departures(doc: OpenApiDocument, schema: Schema, value: unknown, at = '$'): string[] {
  const s = resolveRef(doc, schema);
  // OpenAPI 3.0: `nullable` adds null to a declared type; a schema without one (`{}`) takes anything.
  if (value === null) return s.nullable || (s.type === undefined && !s.oneOf && !s.enum) ? [] : [`${at}: null, not nullable`];
  if (s.oneOf) {
    const each = s.oneOf.map((option) => departures(doc, option, value, at));
    const matching = each.filter((found) => found.length === 0).length;
    if (matching === 1) return [];
    return [`${at}: matches ${matching} of the oneOf schemas, not exactly one`, ...(matching === 0 ? each.flat() : [])];
  }
  if (s.enum && !s.enum.includes(value)) return [`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`];
  switch (s.type) {
    case undefined:
      return [];
    case 'string':
      if (typeof value !== 'string') return [`${at}: not a string`];
      if (s.format === 'date-time' && Number.isNaN(Date.parse(value))) return [`${at}: not a date-time`];
      return [];
    case 'integer':
      return Number.isInteger(value) ? [] : [`${at}: not an integer`];
    case 'number':
      return typeof value === 'number' ? [] : [`${at}: not a number`];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${at}: not a boolean`];
    case 'array':
      if (!Array.isArray(value)) return [`${at}: not an array`];
      return s.items ? value.flatMap((item, i) => departures(doc, s.items!, item, `${at}[${i}]`)) : [];
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: not an object`];
      const record = value as Record<string, unknown>;
      const out = (s.required ?? []).filter((key) => !(key in record)).map((key) => `${at}.${key}: required, missing`);
      for (const [key, item] of Object.entries(record)) {
        const property = s.properties?.[key];
        if (property) out.push(...departures(doc, property, item, `${at}.${key}`));
        else if (typeof s.additionalProperties === 'object') out.push(...departures(doc, s.additionalProperties, item, `${at}.${key}`));
        else if (s.properties && s.additionalProperties !== true) out.push(`${at}.${key}: not in the document`);
      }
      return out;
    }
    default:
      return [`${at}: unknown schema type ${s.type}`];
  }
}

/** The JSON schema the document gives for one answer of one route. */
export function responseSchema(doc: OpenApiDocument, method: string, path: string, status = '200'): Schema {
  const schema = doc.paths[path]?.[method]?.responses[status]?.content?.['application/json']?.schema;
  if (!schema) throw new Error(`${method.toUpperCase()} ${path} documents no application/json schema for ${status}`);
  return schema;
}
