import { CallHandler, ExecutionContext, Injectable, NestInterceptor, SetMetadata, UseInterceptors, applyDecorators } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DomainError, actorOf, type Principal } from '@jan/domain';
import type { FastifyRequest } from 'fastify';
import { bodyDigestOf } from './raw-json-body';
import { IdempotencyStore } from './idempotency-store';
import { HttpError } from './status-table';
import { from, lastValueFrom, type Observable } from 'rxjs';

const IDEMPOTENT = 'jan:idempotent';

export interface IdempotentOptions {
  /** Requests (by their parsed body) that run again on a repeated key instead of being kept and replayed. */
  unless?: (body: unknown) => boolean;
}

/**
 * POST routes whose successful answer is replayed for a repeated `Idempotency-Key`. Bound per
 * route rather than globally: a global interceptor would put every request through rxjs.
 */
export const Idempotent = (options: IdempotentOptions = {}) => applyDecorators(SetMetadata(IDEMPOTENT, options), UseInterceptors(IdempotencyInterceptor));

const KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Replays the first successful answer for a repeated `Idempotency-Key` from the same caller on
 * the same path, so an SDK retry after a lost response never creates a second object or flips
 * `deduped`. Concurrent requests with one key share the first one's outcome. Failed requests are
 * forgotten (a retry runs again). A key sent again with a different request is refused with
 * `422 idempotency_key_reused` rather than answered with the first request's result: for JSON the
 * body's bytes are compared (their SHA-256, taken by the body parser), for a multipart upload,
 * which is read only later, its length. The store is per replica and bounded (10,000 entries and
 * 32 Mi characters of answers, oldest first: `IdempotencyStore`); per-owner SHA-256
 * dedupe is what keeps ingest idempotent across replicas.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly store = new IdempotencyStore();
  private readonly ttlMs = 60 * 60 * 1000;

  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const options = this.reflector.get<IdempotentOptions | undefined>(IDEMPOTENT, context.getHandler());
    if (!options) return next.handle();
    const request = context.switchToHttp().getRequest<FastifyRequest & { principal?: Principal }>();
    const header = request.headers['idempotency-key'];
    if (header === undefined) return next.handle();
    if (typeof header !== 'string' || !KEY.test(header)) {
      throw new DomainError('invalid_request', 'Idempotency-Key must be 1-255 printable characters');
    }
    if (options.unless?.(request.body)) return next.handle();
    const principal = request.principal;
    // A multipart upload from a service or admin naming no user in its headers may name one in the
    // form, which is read only later: the key cannot tell two users' uploads apart (their bodies are
    // compared by length only), so it is not replayed. Per-owner dedupe still keeps a retry from
    // storing anything twice (it answers `deduped: true`).
    if (principal && principal.kind !== 'user' && !principal.actingFor && request.isMultipart?.()) return next.handle();
    const actor = principal ? actorOf(principal) : { kind: 'anonymous', id: '' };
    const actingFor = principal && principal.kind !== 'user' ? (principal.actingFor ?? '') : '';
    // The path itself, not the route's pattern: one key on complete of two ids is two requests.
    const scope = `${actor.kind}:${actor.id}|${actingFor}|${request.method} ${request.url.split('?')[0]}|${header}`;

    const now = Date.now();
    const fingerprint = fingerprintOf(request);
    const found = this.store.find(scope, now);
    if (found) {
      if (found.fingerprint !== fingerprint) {
        throw new HttpError('idempotency_key_reused', 'Idempotency-Key was already used for a different request');
      }
      return from(found.result);
    }

    const result = lastValueFrom(next.handle());
    this.store.remember(scope, { expiresAt: now + this.ttlMs, fingerprint, result });
    return from(result);
  }
}

/** The JSON body's digest (taken by the body parser), or for a multipart upload its length. */
function fingerprintOf(request: FastifyRequest): string {
  if (request.isMultipart?.()) return `multipart:${request.headers['content-length'] ?? ''}`;
  return bodyDigestOf(request) ?? 'no body';
}
