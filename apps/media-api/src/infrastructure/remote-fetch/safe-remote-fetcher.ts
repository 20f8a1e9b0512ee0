import { lookup as dnsLookup } from 'node:dns/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import { Logger } from '@nestjs/common';
import { pipeline, Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { DomainError, isDomainError, RemoteFetcher, type RemoteResource } from '@jan/domain';
import { AddressPolicy, ipLiteralOf, isLocalhostName } from './address-policy';

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to every address it has (like `dns.lookup(host, { all: true })`). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export interface ConnectRequest {
  url: URL;
  /** The address the policy approved; the connection must go to exactly this one. */
  address: string;
  family: 4 | 6;
  headers: Record<string, string>;
  signal: AbortSignal;
  /** PEM certificates trusted in addition to Node's root store (a private CA on-prem). */
  extraCaCertificates?: readonly string[];
}

export interface ConnectResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

/** Sends one GET to one approved address. Swapped out in tests so no socket is opened. */
export type Connector = (request: ConnectRequest) => Promise<ConnectResponse>;

export interface SafeRemoteFetcherOptions {
  /** Bounds the whole fetch: resolution, connects, redirects, headers and the body. */
  timeoutMs: number;
  maxRedirects?: number;
  /** Ranges exempt from the address policy (on-prem sources, tests). */
  allowCidrs?: readonly string[];
  userAgent?: string;
  resolver?: Resolver;
  connector?: Connector;
  /** PEM certificates trusted in addition to Node's root store (`MEDIA_REMOTE_FETCH_CA_FILE`). */
  extraCaCertificates?: readonly string[];
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Fetches remote images without becoming an SSRF proxy. Each hop's URL is checked (http/https, no
 * credentials), its host resolved once, every answer checked against {@link AddressPolicy}, and the
 * socket opened to the very address that passed — so a DNS answer that changes between check and
 * connect (rebinding) cannot redirect it. Uses node:http directly because the global fetch offers
 * no hook to pin the address. Sends no cookies or credentials; follows at most `maxRedirects`.
 */
export class SafeRemoteFetcher extends RemoteFetcher {
  private readonly policy: AddressPolicy;
  private readonly maxRedirects: number;
  private readonly userAgent: string;
  private readonly resolver: Resolver;
  private readonly connector: Connector;
  private readonly logger = new Logger('remote-fetch');

  constructor(private readonly options: SafeRemoteFetcherOptions) {
    super();
    this.policy = new AddressPolicy(options.allowCidrs ?? []);
    this.maxRedirects = options.maxRedirects ?? 3;
    this.userAgent = options.userAgent ?? 'JanMediaAPI/0.1 (+https://jan.ai)';
    this.resolver = options.resolver ?? defaultResolver;
    this.connector = options.connector ?? nodeHttpConnector;
  }

  async fetch(url: string, options: { maxBytes: number; signal?: AbortSignal }): Promise<RemoteResource> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.options.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
    let handedOver = false;
    try {
      const response = await this.follow(url, signal);
      const decoded = decodeBody(response, options.maxBytes);
      // Content-Length counts the encoded bytes: a bound on the image only when nothing is decoded.
      const contentLength = decoded === response.body ? parseContentLength(response.headers['content-length']) : null;
      if (contentLength !== null && contentLength > options.maxBytes) {
        response.body.destroy();
        throw payloadTooLarge(options.maxBytes);
      }
      // The limit applies to the decoded bytes: a small gzip body cannot inflate past it.
      const body = limitBody(decoded, options.maxBytes, signal, () => failure(timeout.signal, options.signal, null), () => clearTimeout(timer));
      handedOver = true;
      return { body, contentType: headerValue(response.headers['content-type']), contentLength };
    } catch (error) {
      throw failure(timeout.signal, options.signal, error);
    } finally {
      if (!handedOver) clearTimeout(timer);
    }
  }

  private async follow(start: string, signal: AbortSignal): Promise<ConnectResponse> {
    let url = parseUrl(start);
    for (let hop = 0; ; hop++) {
      const response = await this.request(url, signal);
      if (REDIRECTS.has(response.status)) {
        response.body.destroy();
        const location = headerValue(response.headers.location);
        if (!location) throw new DomainError('remote_fetch_failed', `upstream answered ${response.status} without a Location`, { status: response.status });
        if (hop >= this.maxRedirects) {
          throw new DomainError('remote_fetch_failed', `more than ${this.maxRedirects} redirects`, { reason: 'too_many_redirects', max_redirects: this.maxRedirects });
        }
        url = parseUrl(location, url);
        continue;
      }
      if (response.status < 200 || response.status > 299) {
        response.body.destroy();
        throw new DomainError('remote_fetch_failed', `upstream answered ${response.status}`, { status: response.status });
      }
      return response;
    }
  }

  private async request(url: URL, signal: AbortSignal): Promise<ConnectResponse> {
    const targets = await this.approvedAddresses(url, signal);
    const headers = { 'user-agent': this.userAgent, accept: 'image/*', 'accept-encoding': 'identity', connection: 'close' };
    let lastError: unknown;
    for (const target of targets) {
      signal.throwIfAborted();
      try {
        return await this.connector({
          url,
          address: target.address,
          family: target.family,
          headers,
          signal,
          extraCaCertificates: this.options.extraCaCertificates,
        });
      } catch (error) {
        if (signal.aborted) throw error;
        lastError = error;
      }
    }
    throw new DomainError('remote_fetch_failed', `could not connect to ${url.host}`, { reason: 'connect' }, { cause: lastError });
  }

  /**
   * Every address the host stands for must pass; one internal answer blocks the whole name. A
   * literal address is refused naming its range (the caller wrote it). A host name that does not
   * resolve and one that resolves to a blocked range get the very same answer, or the refusals
   * would map which internal names exist; the log keeps which it was.
   */
  private async approvedAddresses(url: URL, signal: AbortSignal): Promise<{ address: string; family: 4 | 6 }[]> {
    const literal = ipLiteralOf(url.hostname);
    if (!literal && isLocalhostName(url.hostname)) throw blocked('host names this machine', { reason: 'address', range: 'loopback' });
    if (literal) {
      const verdict = this.policy.check(literal);
      if (!verdict.allowed) throw blocked('address is not public', { reason: 'address', range: verdict.range });
      return [{ address: verdict.address, family: verdict.family }];
    }
    const answers = await this.resolve(url.hostname, signal);
    if (answers.length === 0) throw this.noPublicAddress(url.hostname, { reason: 'dns', answers: 0 });
    return answers.map(({ address }) => {
      const verdict = this.policy.check(address);
      if (!verdict.allowed) throw this.noPublicAddress(url.hostname, { reason: 'address', range: verdict.range });
      return { address: verdict.address, family: verdict.family };
    });
  }

  private async resolve(hostname: string, signal: AbortSignal): Promise<ResolvedAddress[]> {
    signal.throwIfAborted();
    // dns.lookup cannot be cancelled; racing it keeps the overall deadline honest.
    const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    try {
      return await Promise.race([this.resolver(hostname), aborted]);
    } catch (error) {
      if (signal.aborted) throw error;
      throw this.noPublicAddress(hostname, { reason: 'dns', err: error });
    }
  }

  /** The one refusal for a name without a public address; the real reason goes to the log only. */
  private noPublicAddress(hostname: string, why: Record<string, unknown>): DomainError {
    this.logger.warn({ host: hostname, ...why }, 'remote fetch refused: the host has no public address');
    return blocked(`${hostname} does not resolve to a public address`, { reason: 'no_public_address' });
  }
}

/** Connects with node:http(s) to the approved address while speaking to the URL's host name. */
export const nodeHttpConnector: Connector = ({ url, address, family, headers, signal, extraCaCertificates }) =>
  new Promise<ConnectResponse>((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    // Never called for an IP host, but pins any name lookup Node might still do to the approved address.
    const pinned: LookupFunction = (_host, options, callback) => {
      if (options.all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
      else callback(null, address, family);
    };
    const request = (secure ? https : http).request({
      protocol: url.protocol,
      host: address,
      family,
      lookup: pinned,
      port: url.port || (secure ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers: { ...headers, host: url.host },
      // SNI and certificate checks use the name the client asked for; an IP host gets no SNI.
      servername: isIP(hostname) ? '' : hostname,
      // Certificates are always verified; extra CAs add to the root store, never replace it.
      ...(secure && extraCaCertificates?.length ? { ca: [...rootCertificates, ...extraCaCertificates] } : {}),
      agent: false,
      signal,
    });
    request.once('response', (response) => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: response }));
    request.once('error', reject);
    request.end();
  });

const defaultResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/**
 * Passes the upstream body on while counting it: the stream errors with `payload_too_large` the
 * moment more than `maxBytes` arrive (servers lie about Content-Length), and with the mapped
 * timeout or upstream error if the transfer dies.
 */
function limitBody(upstream: Readable, maxBytes: number, signal: AbortSignal, aborted: () => DomainError | unknown, done: () => void): Readable {
  let received = 0;
  let ended = false;
  // An error nobody listens for would crash the process; a body left unread just goes away quietly.
  const destroy = (error: Error) => body.destroy(body.listenerCount('error') > 0 ? error : undefined);
  const onAbort = () => destroy(toError(aborted()));
  const body = new Readable({
    read() {
      upstream.resume();
    },
    destroy(error, callback) {
      signal.removeEventListener('abort', onAbort);
      done();
      upstream.destroy();
      callback(error);
    },
  });
  signal.addEventListener('abort', onAbort, { once: true });
  upstream.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > maxBytes) {
      destroy(payloadTooLarge(maxBytes));
      return;
    }
    if (!body.push(chunk)) upstream.pause();
  });
  upstream.once('end', () => {
    ended = true;
    signal.removeEventListener('abort', onAbort);
    done();
    body.push(null);
  });
  const fail = (error?: unknown) => {
    if (ended || body.destroyed) return;
    // Our own refusal on the way (the encoded-bytes limit) keeps its code; anything else is the upstream's.
    destroy(signal.aborted ? toError(aborted()) : isDomainError(error) ? error : new DomainError('remote_fetch_failed', 'upstream connection failed mid-body', { reason: 'body' }, { cause: error }));
  };
  upstream.once('error', fail);
  upstream.once('close', () => fail());
  upstream.pause();
  if (signal.aborted) onAbort();
  return body;
}

/** Maps what went wrong to a stable code, preferring our own deadline over the symptom it caused. */
function failure(timeout: AbortSignal, caller: AbortSignal | undefined, error: unknown): unknown {
  if (caller?.aborted) return caller.reason;
  if (timeout.aborted) return new DomainError('remote_fetch_timeout', 'remote fetch timed out', undefined, error ? { cause: error } : undefined);
  if (isDomainError(error)) return error;
  return new DomainError('remote_fetch_failed', 'remote fetch failed', { reason: 'connect' }, { cause: error });
}

function parseUrl(input: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(input, base);
  } catch {
    throw base
      ? new DomainError('remote_fetch_failed', 'upstream redirected to an invalid URL', { reason: 'bad_redirect' })
      : new DomainError('invalid_remote_url', 'url is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw blocked('only http and https URLs can be fetched', { reason: 'scheme' });
  if (url.username || url.password) throw blocked('URLs with credentials are not fetched', { reason: 'credentials' });
  return url;
}

/**
 * The body with its `Content-Encoding` undone. The request asks for `identity`, but some servers
 * and CDNs compress anyway (an image is rarely worth it, a BMP or TIFF can be); gzip, deflate and
 * br are decoded, anything else is refused rather than sniffed as an archive.
 */
function decodeBody(response: ConnectResponse, maxBytes: number): Readable {
  const encodings = (headerValue(response.headers['content-encoding']) ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e && e !== 'identity');
  if (encodings.length === 0) return response.body;
  if (encodings.length > 1 || !DECODERS[encodings[0]!]) {
    response.body.destroy();
    throw new DomainError('remote_fetch_failed', `upstream sent Content-Encoding ${encodings.join(', ')}, which is not decoded`, { reason: 'content_encoding' });
  }
  const decoder = DECODERS[encodings[0]!]!();
  // A broken stream surfaces as the body's error (remote_fetch_failed, reason body); both ends go.
  // The wire is limited too: a stream that decodes to nothing (empty gzip members) must not take
  // in gigabytes until the timeout. Compressed images are smaller than decoded ones.
  return pipeline(response.body, countingLimit(maxBytes), decoder, () => undefined);
}

/** Passes bytes on until more than `maxBytes` have passed, then fails with payload_too_large. */
function countingLimit(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      callback(seen > maxBytes ? payloadTooLarge(maxBytes) : null, chunk);
    },
  });
}

const DECODERS: Record<string, () => Transform> = {
  gzip: () => createGunzip(),
  'x-gzip': () => createGunzip(),
  deflate: () => createInflate(),
  br: () => createBrotliDecompress(),
};

function parseContentLength(value: string | undefined): number | null {
  if (value === undefined || !/^\d+$/.test(value.trim())) return null;
  return Number(value.trim());
}

function headerValue(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

function blocked(message: string, details: Record<string, unknown>): DomainError {
  return new DomainError('remote_fetch_blocked', message, details);
}

function payloadTooLarge(maxBytes: number): DomainError {
  return new DomainError('payload_too_large', `remote resource exceeds ${maxBytes} bytes`, { max_bytes: maxBytes });
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
