import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorBody } from './error-body';

/** A path segment longer than this is refused by the router before any handler runs. */
export const MAX_PARAM_LENGTH = 500;

/**
 * Fastify's router refuses some URLs before Nest sees the request (a path segment that is not
 * valid percent-encoding, one longer than MAX_PARAM_LENGTH). Without this they got Fastify's own
 * body, without `request_id` or `X-Request-Id`; now they answer like every other refusal.
 */
export function frameworkErrors(error: { code?: string }, request: FastifyRequest, reply: FastifyReply): void {
  const message =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? `a path segment is longer than ${MAX_PARAM_LENGTH} characters` : 'the URL is malformed';
  const body: ErrorBody = { error: message, code: 'invalid_request', request_id: String(request.id) };
  void reply.status(400).header('x-request-id', request.id).header('content-type', 'application/json; charset=utf-8').send(body);
}
