import type { OpenAPIObject } from '@nestjs/swagger';
import { STATUS_BY_CODE } from './status-table';

type Operation = { responses?: Record<string, unknown> };

const DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request (`invalid_request`, `invalid_data_url`, `invalid_remote_url`, `unknown_source_type`, `empty_file`, `remote_fetch_blocked`)',
  401: 'Missing or bad credentials (`unauthorized`)',
  404: 'Unknown, malformed, pending or someone else\'s id (`media_not_found`)',
  409: 'Not ready yet (`media_not_ready`): nothing uploaded, an overlapping complete of the same id still storing its bytes, or a pin or unpin before `complete`; retry',
  410: 'The upload reservation expired (`upload_expired`)',
  413: 'Over the size limit (`payload_too_large`, `inline_too_large`)',
  415: 'Not an allowed image type, or a request body of another type than the route reads (`unsupported_media_type`)',
  416: 'Range outside the object (`range_not_satisfiable`)',
  422:
    'Bytes refused after reading them (`corrupt_image`, `image_too_large`, `content_rejected`; a direct upload\'s `size_mismatch`, `checksum_mismatch`, `type_mismatch`), ' +
    'or an `Idempotency-Key` reused for another request (`idempotency_key_reused`)',
  429: 'Rate limit or quota (`rate_limited` with `Retry-After`, `quota_exceeded`)',
  502: 'The remote URL could not be fetched (`remote_fetch_failed`)',
  503: 'A dependency is down (`database_unavailable`, `storage_unavailable`, `scanner_unavailable`, `auth_unavailable`); retry',
  504: 'The remote URL took longer than `MEDIA_REMOTE_FETCH_TIMEOUT` (`remote_fetch_timeout`)',
};

/** Statuses every authenticated route can answer. */
const COMMON = [400, 401, 429, 503];

/** Statuses beyond COMMON, by `METHOD path`. */
const BY_ROUTE: Record<string, number[]> = {
  'POST /v1/media': [413, 415, 422, 502, 504],
  'POST /v1/media/upload': [413, 415, 422],
  'POST /v1/media/prepare-upload': [413, 415, 422],
  'POST /v1/media/{id}/complete': [404, 409, 410, 413, 415, 422],
  'POST /v1/media/resolve': [404, 413, 415],
  'GET /v1/media/{id}': [404, 416],
  // Routes that read no body still refuse one of a type no parser reads (an image, XML…).
  'PUT /v1/media/{id}/pin': [404, 409, 415],
  'DELETE /v1/media/{id}/pin': [404, 409, 415],
  'DELETE /v1/media/{id}': [404, 415],
  // An Idempotency-Key reused for another body: 422 idempotency_key_reused.
  'POST /v1/admin/media/purge': [415, 422],
  'POST /v1/admin/media/{id}/reissue': [404, 415],
};

/** Headers some error responses carry. */
const HEADERS: Record<number, Record<string, { description: string; schema: { type: string } }>> = {
  416: { 'Content-Range': { description: '`bytes */<size>`: the object\'s size', schema: { type: 'string' } } },
  429: {
    'Retry-After': { description: 'Seconds until the window frees a request (`rate_limited` only)', schema: { type: 'integer' } },
    'RateLimit-Limit': { description: 'Requests allowed per window (`rate_limited` only)', schema: { type: 'integer' } },
    'RateLimit-Remaining': { description: 'Requests left in this window', schema: { type: 'integer' } },
    'RateLimit-Reset': { description: 'Seconds until the window resets', schema: { type: 'integer' } },
  },
  503: { 'Retry-After': { description: 'Seconds to wait before retrying (always 2)', schema: { type: 'integer' } } },
};

/**
 * Adds the error responses each route can give, all with the one error body, to the document
 * Nest builds from the controllers (which declare the successes, 206 and 304 included).
 */
export function withErrorResponses(document: OpenAPIObject): OpenAPIObject {
  document.components ??= {};
  document.components.schemas ??= {};
  document.components.schemas['Error'] = {
    type: 'object',
    required: ['error', 'code', 'request_id'],
    properties: {
      error: { type: 'string', description: 'What went wrong, for people' },
      code: { type: 'string', enum: Object.keys(STATUS_BY_CODE), description: 'Stable; see docs/api.md' },
      request_id: { type: 'string', description: 'Also in the X-Request-Id header' },
      details: { type: 'object', additionalProperties: true, description: 'Safe extra facts, e.g. `ids` of a 404 from resolve' },
    },
  };
  for (const [path, item] of Object.entries(document.paths)) {
    if (!path.startsWith('/v1/')) continue;
    for (const [method, operation] of Object.entries(item as Record<string, Operation>)) {
      if (!['get', 'post', 'put', 'delete', 'patch'].includes(method)) continue;
      // Admin routes answer 404 `route_not_found` to anyone without the admin key, as if absent.
      const admin = path.startsWith('/v1/admin/') ? [404] : [];
      const statuses = [...new Set([...COMMON, ...admin, ...(BY_ROUTE[`${method.toUpperCase()} ${path}`] ?? (path.includes('{id}') ? [404] : []))])];
      operation.responses ??= {};
      for (const status of statuses.sort()) {
        if (operation.responses[String(status)]) continue;
        operation.responses[String(status)] = {
          description: status === 404 && admin.length ? `${DESCRIPTIONS[404]}; \`route_not_found\` without the admin key` : DESCRIPTIONS[status],
          ...(HEADERS[status] ? { headers: HEADERS[status] } : {}),
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        };
      }
    }
  }
  return document;
}
