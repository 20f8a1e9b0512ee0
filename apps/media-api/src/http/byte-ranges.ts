import type { ByteRange } from '@jan/domain';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorBody } from './error-body';
import { statusOf } from './status-table';

/**
 * `If-None-Match` against the object's strong ETag, compared weakly as RFC 9110 asks: `W/"x"`
 * matches `"x"`, and `*` matches any object that exists.
 */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === etag;
  });
}

/**
 * One `bytes=a-b` range. Anything else serves the whole object: another unit, several ranges,
 * and an int-range RFC 9110 §14.1.1 calls invalid (last-pos below first-pos, `bytes=9-3`): only
 * a valid range gets a 206 (§14.2), and 416 is for valid ones the object cannot satisfy
 * (first-pos at or past its end, a zero suffix), which are 'unsatisfiable'.
 */
export function parseRange(header: string | undefined, size: number): Required<ByteRange> | null | 'unsatisfiable' {
  if (!header) return null;
  // Range units compare case-insensitively (RFC 9110 §14.1).
  const match = /^bytes=(\d*)-(\d*)$/i.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    if (match[2] !== '' && Number(match[2]) < start) return null;
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end } satisfies ByteRange;
}

/**
 * The range a request asks for, as `parseRange` reads it, or null for the whole object: on any
 * method but GET (RFC 9110 §14.2 defines Range for GET only, so a HEAD answers with the headers of
 * the whole object), and when an If-Range does not name `etag` exactly (§13.1.5: a strong
 * comparison, so a weak tag never matches, nor does a date: no Last-Modified is sent).
 */
export function requestedRange(request: FastifyRequest, size: number, etag: string): Required<ByteRange> | null | 'unsatisfiable' {
  if (request.method !== 'GET') return null;
  const ifRange = single(request.headers['if-range']);
  if (ifRange !== undefined && ifRange.trim() !== etag) return null;
  return parseRange(single(request.headers.range), size);
}

/** The bytes a response carries: the range's, or the whole object's. */
export function servedLength(range: Required<ByteRange> | null, size: number): number {
  return range ? range.end - range.start + 1 : size;
}

/** Whether the request's If-None-Match matches `etag` (see `noneMatch`). */
export function notModified(request: FastifyRequest, etag: string): boolean {
  return noneMatch(single(request.headers['if-none-match']), etag);
}

function single(header: string | string[] | undefined): string | undefined {
  return Array.isArray(header) ? undefined : header;
}

/** 416, naming the object's size in Content-Range (RFC 9110 §15.5.17), with the usual error body. */
export function sendRangeNotSatisfiable(request: FastifyRequest, reply: FastifyReply, size: number): FastifyReply {
  const body: ErrorBody = { error: 'range not satisfiable', code: 'range_not_satisfiable', request_id: String(request.id) };
  return reply.status(statusOf(body.code)).header('content-range', `bytes */${size}`).send(body);
}
