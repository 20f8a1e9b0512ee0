import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorBody } from './error-body';
import { statusOf, type HttpErrorCode } from './status-table';

/** A path segment longer than this is refused by the router before any handler runs. */
export const MAX_PARAM_LENGTH = 500;

/**
 * Fastify's router refuses some URLs before Nest sees the request (a path segment that is not
 * valid percent-encoding, one longer than MAX_PARAM_LENGTH). Without this they got Fastify's own
 * body, without `request_id` or `X-Request-Id`; now they answer like every other refusal.
 */
export function frameworkErrors(error: { code?: string }, request: FastifyRequest, reply: FastifyReply): void {
  const refusal = URL_ERRORS[error.code ?? ''];
  const body: ErrorBody = refusal
    ? { error: refusal, code: 'invalid_request', request_id: String(request.id) }
    : { error: 'internal error', code: 'internal_error', request_id: String(request.id) };
  void reply
    .status(statusOf(body.code))
    .header('x-request-id', request.id)
    .header('content-type', 'application/json; charset=utf-8')
    .send(body);
}

/** The router's refusals of a URL the client sent; anything else it reports is not the client's. */
const URL_ERRORS: Record<string, string> = {
  FST_ERR_BAD_URL: 'the URL is malformed',
  FST_ERR_MAX_PARAM_LENGTH: `a path segment is longer than ${MAX_PARAM_LENGTH} characters`,
};

/**
 * Node's HTTP parser refuses some requests before Fastify has one (headers over Node's 16 KiB, a
 * malformed request line, a request that took longer than `requestTimeout` to arrive). Fastify
 * answered those with its own body (`{error, message, statusCode}`); now they carry a stable code
 * and a request id like every other refusal, and the connection is closed as before.
 */
export function clientErrors(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [code, message] = CLIENT_ERRORS[error.code ?? ''] ?? (['invalid_request', 'the request is malformed'] as const);
  const requestId = randomUUID();
  const body = JSON.stringify({ error: message, code, request_id: requestId } satisfies ErrorBody);
  const status = statusOf(code);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

const CLIENT_ERRORS: Record<string, readonly [HttpErrorCode | 'invalid_request', string]> = {
  HPE_HEADER_OVERFLOW: ['headers_too_large', 'the request line and headers exceed 16 KiB'],
  ERR_HTTP_REQUEST_TIMEOUT: ['request_timeout', 'the request did not arrive in time'],
};

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };
