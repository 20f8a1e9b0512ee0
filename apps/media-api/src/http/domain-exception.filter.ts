import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { DomainError, type ErrorCode } from '@jan/domain';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { traceIdOf } from '../infrastructure/audit/request-context';
import type { ErrorBody } from './error-body';
import type { RouteMethods } from './route-methods';
import { HttpError, statusOf, type HttpErrorCode } from './status-table';

interface Mapped {
  status: number;
  code: ErrorCode | HttpErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * `Retry-After` on every 503 (a dependency down, `/readyz` failing or shutting down). The SDK waits
 * exactly this long instead of its backoff, so it stays short: two retries cost ~4 s, not more.
 */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

/** 5xx answers about a remote URL the client named (502, 504): logged as warnings, not errors. */
const CLIENTS_URL: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['remote_fetch_failed', 'remote_fetch_timeout']);

/** The statuses of those answers, which no other code has: the request line logs them at warn too. */
export const CLIENTS_URL_STATUSES: ReadonlySet<number> = new Set([...CLIENTS_URL].map(statusOf));

/**
 * Turns every error into `{error, code, request_id}` with the status from the one table. Unknown
 * errors become a generic 500, logged with the request id; client mistakes never do.
 */
@Catch()
export class DomainExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('errors');

  /** With `routes`, a known path asked with another method answers 405 and `Allow`, not 404. */
  constructor(private readonly routes?: RouteMethods) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const health = healthReport(exception);
    if (health) {
      // /readyz with a dependency down: terminus's own report, as Kubernetes and operators expect it.
      if (!reply.sent) void reply.status(503).header('retry-after', String(UNAVAILABLE_RETRY_AFTER_SECONDS)).header('content-type', 'application/json; charset=utf-8').send(health);
      return;
    }
    let mapped = mapError(exception);
    let allow: string[] = [];
    if (mapped.code === 'route_not_found' && this.routes) {
      allow = this.routes.allowedAt(request.url.split('?')[0]);
      if (allow.length && !allow.includes(request.method)) {
        mapped = { status: 405, code: 'method_not_allowed', message: `${request.method} is not allowed here; use ${allow.join(', ')}` };
      } else {
        allow = [];
      }
    }
    // Like every other line of the request: its id and the caller's W3C trace id (llm-api's trace).
    const traceId = mapped.status >= 500 || mapped.details ? traceIdOf(request.headers.traceparent) : null;
    const ids = { request_id: request.id, ...(traceId ? { trace_id: traceId } : {}) };
    if (mapped.status >= 500 && CLIENTS_URL.has(mapped.code as ErrorCode)) {
      // A URL the client gave that could not be fetched: its to fix, not ours, so no stack trace.
      this.logger.warn({ ...ids, code: mapped.code, reason: exception instanceof Error ? exception.message : String(exception) }, 'remote fetch failed');
    } else if (mapped.status >= 500) {
      this.logger.error({ err: exception, ...ids, code: mapped.code }, 'request failed');
    }
    // Which provider and operation failed is for operators: logged with the request id, not sent.
    if (mapped.details && !sendsDetails(mapped)) {
      this.logger.warn({ ...ids, code: mapped.code, details: mapped.details }, 'error details withheld from the client');
      mapped = { ...mapped, details: undefined };
    }
    const body: ErrorBody = { error: mapped.message, code: mapped.code, request_id: String(request.id) };
    if (mapped.details) body.details = mapped.details;
    if (reply.sent) return;
    if (allow.length) void reply.header('allow', allow.join(', '));
    if (mapped.code === 'rate_limited' || mapped.code === 'quota_exceeded') {
      const retry = mapped.details?.retry_after_seconds;
      if (typeof retry === 'number') void reply.header('retry-after', String(Math.max(1, Math.ceil(retry))));
    }
    if (mapped.status === 503) void reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
    void reply.status(mapped.status).header('content-type', 'application/json; charset=utf-8').send(body);
  }
}

/** Fastify's own errors for bodies it refuses before our code runs. */
const FASTIFY_CODES: Record<string, Mapped> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'payload_too_large', message: 'request body exceeds the size limit' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_request', message: 'request body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_request', message: 'request body is empty' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type', message: 'unsupported request content type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'invalid_request', message: 'invalid content length' },
  FST_REQ_FILE_TOO_LARGE: { status: 413, code: 'payload_too_large', message: 'file exceeds the size limit' },
  FST_INVALID_MULTIPART_CONTENT_TYPE: { status: 400, code: 'invalid_request', message: 'request is not multipart/form-data' },
  FST_PARTS_LIMIT: { status: 413, code: 'payload_too_large', message: 'too many multipart parts' },
  FST_FILES_LIMIT: { status: 413, code: 'payload_too_large', message: 'too many files' },
  FST_FIELDS_LIMIT: { status: 413, code: 'payload_too_large', message: 'too many fields' },
};

export function mapError(exception: unknown): Mapped {
  if (exception instanceof DomainError) {
    return { status: statusOf(exception.code), code: exception.code, message: exception.message, details: exception.details };
  }
  if (exception instanceof HttpError) return { status: statusOf(exception.code), code: exception.code, message: exception.message };
  const fastifyCode = (exception as { code?: unknown })?.code;
  if (typeof fastifyCode === 'string' && FASTIFY_CODES[fastifyCode]) return FASTIFY_CODES[fastifyCode];
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const response = exception.getResponse() as { message?: string | string[] } | string;
    const message =
      typeof response === 'string' ? response : Array.isArray(response.message) ? response.message.join('; ') : (response.message ?? exception.message);
    if (status === 404) return { status, code: 'route_not_found', message: 'route not found' };
    if (status === 405) return { status, code: 'method_not_allowed', message };
    if (status === 413) return { status, code: 'payload_too_large', message };
    if (status === 415) return { status, code: 'unsupported_media_type', message: 'unsupported request content type' };
    if (status === 429) return { status, code: 'rate_limited', message: 'too many requests', details: { retry_after_seconds: 1 } };
    if (status === 401) return { status, code: 'unauthorized', message };
    if (status < 500) return { status: 400, code: 'invalid_request', message };
  }
  const statusCode = (exception as { statusCode?: unknown })?.statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return { status: statusCode === 413 ? 413 : 400, code: statusCode === 413 ? 'payload_too_large' : 'invalid_request', message: 'invalid request' };
  }
  return { status: 500, code: 'internal_error', message: 'internal error' };
}

/**
 * Whether an error's details may go to the client. Not those of a storage backend (they name the
 * provider, the operation and its error: a range S3 refused, a checksum GCS's library rejected),
 * of an unavailable storage, or of a 500.
 */
export function sendsDetails(mapped: Pick<Mapped, 'code' | 'details'>): boolean {
  if (mapped.code === 'storage_unavailable' || mapped.code === 'internal_error') return false;
  return !(mapped.details && 'provider' in mapped.details);
}

/** The body of @nestjs/terminus's 503 (`{status: 'error' | 'shutting_down', info, error, details}`), if that is what failed. */
function healthReport(exception: unknown): object | null {
  if (!(exception instanceof HttpException) || exception.getStatus() !== 503) return null;
  const response = exception.getResponse();
  const status = typeof response === 'object' && response !== null ? (response as { status?: unknown }).status : undefined;
  return (status === 'error' || status === 'shutting_down') && 'details' in (response as object) ? (response as object) : null;
}
