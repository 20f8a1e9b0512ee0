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
  const refusal = URL_ERRORS[error.code ?? ''];
  const body: ErrorBody = refusal
    ? { error: refusal, code: 'invalid_request', request_id: String(request.id) }
    : { error: 'internal error', code: 'internal_error', request_id: String(request.id) };
  void reply
    .status(refusal ? 400 : 500)
    .header('x-request-id', request.id)
    .header('content-type', 'application/json; charset=utf-8')
    .send(body);
}

/** The router's refusals of a URL the client sent; anything else it reports is not the client's. */
const URL_ERRORS: Record<string, string> = {
  FST_ERR_BAD_URL: 'the URL is malformed',
  FST_ERR_MAX_PARAM_LENGTH: `a path segment is longer than ${MAX_PARAM_LENGTH} characters`,
};
