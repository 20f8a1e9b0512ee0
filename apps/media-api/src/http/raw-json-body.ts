import { errorCodes, type FastifyBodyParser } from 'fastify';
import { createHash } from 'node:crypto';
import { DomainError } from '@jan/domain';

/**
 * JSON bodies. Routes that read JSON text themselves opt in with `@RouteConfig({ rawJson: true })`
 * and get a `RawJsonBody` (resolve: see `readResolveBody`); every other route gets the parsed
 * value, with the same rules as Fastify's default parser (secure-json-parse with both
 * prototype-poisoning actions on `error`).
 */
export class RawJsonBody {
  constructor(readonly bytes: Buffer) {}
}

export interface RawJsonRouteConfig {
  rawJson?: boolean;
  /**
   * The route reads no body (complete, pin, delete) or one whose fields are all optional (admin
   * reissue): an empty body sent as `application/json`, as many HTTP clients send with every POST,
   * is read as none, as no body is, instead of answering 400.
   */
  emptyBodyIsNone?: boolean;
  /**
   * Reads the body in place of `parseJson`, with the same result and the same errors (ingest's
   * `parseIngestJson`, which decodes a data URL straight from the body's bytes).
   */
  jsonParser?: (body: Buffer) => unknown;
}

/**
 * SHA-256 of a JSON body's bytes, kept for requests that carry an `Idempotency-Key` (the replay
 * store compares it): hashing the bytes as they arrived costs a fraction of re-serializing the
 * parsed body, which for a 20 MiB data URL held the event loop for hundreds of milliseconds.
 */
const bodyDigests = new WeakMap<object, string>();

export function bodyDigestOf(request: object): string | undefined {
  return bodyDigests.get(request);
}

/** The `application/json` parser: raw bytes for opted-in routes, the parsed value elsewhere. */
export const jsonBodyParser: FastifyBodyParser<Buffer> = (request, body, done) => {
  const charset = foreignCharset(request.headers['content-type']);
  if (charset) return done(new DomainError('unsupported_media_type', 'JSON bodies must be UTF-8', { charset }), undefined);
  const route = request.routeOptions.config as RawJsonRouteConfig | undefined;
  // An empty body gets the default parser's own error on every route that reads one.
  if (body.length === 0) return route?.emptyBodyIsNone ? done(null, undefined) : done(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY(), undefined);
  if (request.headers['idempotency-key'] !== undefined) bodyDigests.set(request, createHash('sha256').update(body).digest('base64'));
  if (route?.rawJson) return done(null, new RawJsonBody(body));
  let value: unknown;
  try {
    value = (route?.jsonParser ?? parseJson)(body);
  } catch (error) {
    if (error instanceof RefusedJsonError) return done(new DomainError('invalid_request', error.message), undefined);
    return done(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY(), undefined);
  }
  done(null, value);
};

/**
 * The `charset` of a JSON content type when it is not UTF-8, which every body is read as (RFC 8259
 * has JSON exchanged in UTF-8): a UTF-16 body was read as UTF-8 and answered 400 or, worse, parsed.
 */
export function foreignCharset(contentType: string | undefined): string | undefined {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType ?? '')?.[1];
  return charset !== undefined && !/^utf-?8$/i.test(charset) ? charset.slice(0, 40) : undefined;
}

/** Valid JSON that is refused all the same. */
class RefusedJsonError extends SyntaxError {}

/** It names a prototype. */
class ForbiddenKeyError extends RefusedJsonError {
  constructor() {
    super('request body has a `__proto__` key, or a `constructor` with a `prototype`: refused');
  }
}

/**
 * How deeply a parsed body may nest. The validation pipe (class-transformer) walks bodies
 * recursively, and a few thousand levels overflowed its stack (a 500); no route's body needs more
 * than a handful. Resolve reads its own bytes (any depth) and never meets this.
 */
export const MAX_JSON_DEPTH = 64;

class TooDeepError extends RefusedJsonError {
  constructor() {
    super(`request body nests deeper than ${MAX_JSON_DEPTH} levels: refused`);
  }
}

/**
 * JSON.parse, refusing what could poison a prototype later: an own `__proto__` key, or a
 * `constructor` object with an own `prototype`, at any depth; and nesting past MAX_JSON_DEPTH.
 * secure-json-parse (Fastify's default) first runs two regular expressions over the whole text, which for an 87 KB data URL
 * body cost more than the parse; checking the parsed objects costs per key, not per byte.
 */
export function parseJson(body: Buffer): unknown {
  let text = body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const value: unknown = JSON.parse(text);
  const pending: unknown[] = [value];
  const depths: number[] = [1];
  while (pending.length) {
    const node = pending.pop();
    const depth = depths.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > MAX_JSON_DEPTH) throw new TooDeepError();
    if (Object.hasOwn(node, '__proto__')) throw new ForbiddenKeyError();
    const ctor = (node as { constructor?: unknown }).constructor;
    if (Object.hasOwn(node, 'constructor') && ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')) {
      throw new ForbiddenKeyError();
    }
    for (const key in node) {
      const child = (node as Record<string, unknown>)[key];
      if (child !== null && typeof child === 'object') {
        pending.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return value;
}
