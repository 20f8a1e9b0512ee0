import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import multipart from '@fastify/multipart';
import { ValidationPipe, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { DomainError, MediaEvents } from '@jan/domain';
import { openDatabase, type Database } from '@jan/persistence';
import { errorCodes, type FastifyReply, type FastifyRequest } from 'fastify';
import { Logger, LoggerModule, PinoLogger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { registerCors } from './auth/cors-policy';
import { ensureGeneratedSecrets } from './config/generated-secrets';
import { loadConfig, type MediaConfig } from './config/media-config';
import { BodyMemoryBudget, meterUnknownLength } from './http/body-memory-budget';
import { CLIENTS_URL_STATUSES, DomainExceptionFilter } from './http/domain-exception.filter';
import { Draining } from './http/draining';
import { clientErrors, frameworkErrors, MAX_PARAM_LENGTH } from './http/framework-errors';
import { InFlightWrites } from './http/in-flight-writes';
import { withErrorResponses } from './http/openapi-errors';
import { withHeadOperations } from './http/openapi-head';
import { requestTimeoutCheckMs } from './http/request-timeout';
import { RouteMethods } from './http/route-methods';
import { jsonBodyParser } from './http/raw-json-body';
import { RequestContextStore, traceIdOf } from './infrastructure/audit/request-context';
import { MediaMetrics } from './infrastructure/observability/media-metrics';
import { startTracing, tracingSettingsFrom, type Tracing } from './infrastructure/observability/tracing';

export interface RunningApp {
  app: NestFastifyApplication;
  config: MediaConfig;
  database: Database;
  /** Set when the embedded default generated (or reloaded) the service key. */
  generatedServiceKey?: string;
  close(): Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;
/** The local backend's upload URLs (UploadsController): the only routes that read a raw body. */
const RAW_BODY_ROUTES = '/v1/uploads/';

/**
 * A base64 data URL is 4/3 of the image. Its text may also be wrapped in lines (a CRLF every 64
 * characters, PEM's width, is 4 bytes as JSON escapes: 1/16 more; MIME's 76 is less) or have its
 * slashes escaped (`\/`, 1/64 more), which are still that image: allowed, plus the JSON around it.
 */
function jsonBodyLimit(maxBytes: number): number {
  const base64 = Math.ceil(maxBytes / 3) * 4;
  return base64 + Math.ceil(base64 / 16) + 64 * 1024;
}

/** Builds the app from an environment map: validated config, database opened and migrated. */
export async function createApp(env: Record<string, string | undefined>): Promise<RunningApp> {
  const config = loadConfig(env);
  const { serviceKey } = await ensureGeneratedSecrets(config);
  const database = await openDatabase({
    writeDsn: config.writeDsn,
    readDsn: config.readDsn,
    dataDir: config.dataDir,
    poolSize: config.dbPoolSize,
    preparedStatements: config.dbPreparedStatements,
  });
  let tracing: Tracing | null = null;
  try {
    const adapter = new FastifyAdapter({
      bodyLimit: jsonBodyLimit(config.maxBytes),
      genReqId: (request: { headers: Record<string, string | string[] | undefined> }) => {
        const given = request.headers['x-request-id'];
        return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      },
      // A hop count trusts the nearest N proxies, as Fastify's numeric form does.
      trustProxy: typeof config.trustProxy === 'number' ? trustHops(config.trustProxy) : config.trustProxy,
      routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
      frameworkErrors,
      clientErrorHandler: clientErrors,
      // During the drain Fastify answered a request arriving on a still-open keep-alive
      // connection with its own bare 503 (no code, no request id). It is served as usual instead
      // (the database stays open until the server has closed), with `Connection: close`.
      return503OnClosing: false,
      // Fastify's default is no limit, so a client could hold a connection (and an upload's temp
      // file) open for ever by sending a byte now and then. Node answers 408 request_timeout
      // (clientErrors) to a request not received whole in time, checking every few seconds. It
      // must reach Node's server constructor (`http`): on Node 20 the property Fastify sets
      // afterwards (`requestTimeout`) is never enforced (request-timeout.test.ts).
      requestTimeout: config.requestTimeoutMs,
      http: { requestTimeout: config.requestTimeoutMs, connectionsCheckingInterval: requestTimeoutCheckMs(config.requestTimeoutMs) },
    });
    const requestContext = new RequestContextStore();
    const root = {
      module: class RootModule {},
      imports: [
        // nestjs-pino is the app's logger; request lines are written by one cheap Fastify hook
        // below instead of its pino-http middleware (a child logger per request cost ~14% of
        // resolve throughput even with request logging off).
        LoggerModule.forRoot({ forRoutes: [], pinoHttp: { level: config.logLevel } }),
        AppModule.register({ config, database, requestContext }),
      ],
    };
    const app = await NestFactory.create<NestFastifyApplication>(root, adapter, { bufferLogs: true });
    app.useLogger(app.get(Logger));
    const fastify = app.getHttpAdapter().getInstance();
    // Before any route is added: every one is recorded, for 405 on a known path.
    const routes = new RouteMethods((url) => url.startsWith('/v1/admin'));
    routes.watch(fastify);
    app.useGlobalFilters(new DomainExceptionFilter(routes));
    app.useGlobalPipes(new ValidationPipe({ whitelist: true, transform: true }));
    app.useBodyParser('application/json', { bodyLimit: fastify.initialConfig.bodyLimit }, jsonBodyParser);
    registerCors(fastify, config.corsOrigins);
    await fastify.register(multipart, { limits: { fileSize: config.maxBytes + 1, files: 1, fields: 10, fieldSize: 4096, parts: 20 } });
    // Direct uploads to the local backend stream raw image bodies; nothing else accepts them. Any
    // other route refuses one as a type it does not read (415): handed on, the stream reached the
    // validation pipe of a DTO route, which walked into the socket's native handle and aborted the
    // process. No route at all (404, 405) is left to say so, reading nothing.
    fastify.addContentTypeParser(/^(image\/|application\/octet-stream)/, (request, payload, done) =>
      request.routeOptions.url === undefined || request.routeOptions.url.startsWith(RAW_BODY_ROUTES)
        ? done(null, payload)
        : done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(request.headers['content-type']), undefined),
    );
    // JSON bodies are buffered whole and parsed; the parsed data URL lives until the handler is
    // done. Bound how many large ones are in memory from before reading until the response.
    const budget = new BodyMemoryBudget(config.bodyMemoryBudget);
    const bodyLimit = fastify.initialConfig.bodyLimit!;
    const releases = new WeakMap<object, () => void>();
    const release = (request: object) => releases.get(request)?.();
    // Requests whose client went away: one that did so while its body waited for budget gets no
    // response (no onResponse), so its share is given back the moment it is granted.
    const abandoned = new WeakSet<object>();
    // Hooks on every request are callback-style: an async hook costs a promise and a microtask each.
    fastify.addHook('preParsing', (request, _reply, payload, done) => {
      const type = request.headers['content-type'] ?? '';
      if (!type.toLowerCase().includes('json')) return done(null, payload);
      const keep = (releaseBody: () => void) => (abandoned.has(request) ? releaseBody() : releases.set(request, releaseBody));
      const declared = request.headers['content-length'];
      if (declared === undefined) return done(null, meterUnknownLength(payload, budget, bodyLimit, keep));
      const bytes = Number(declared);
      if (!budget.governs(bytes)) return done(null, payload);
      budget.acquire(bytes).then((releaseBody) => {
        keep(releaseBody);
        if (abandoned.has(request)) return done(new DomainError('invalid_request', 'the client went away before its body was read'));
        done(null, payload);
      }, done);
    });
    fastify.addHook('onRequestAbort', (request, done) => {
      abandoned.add(request);
      release(request);
      done();
    });
    // Set on arrival rather than in onSend: with no onSend hook at all, Fastify skips that stage.
    // From the start of a shutdown each answer closes its connection, so keep-alive clients
    // reconnect (through a load balancer that has taken the pod out of rotation by then).
    const draining = app.get(Draining);
    fastify.addHook('onRequest', (request, reply, done) => {
      void reply.header('x-request-id', request.id);
      if (draining.active) void reply.header('connection', 'close');
      done();
    });
    const metrics = app.get(MediaMetrics);
    const requestLog = (await app.resolve(PinoLogger)).logger;
    fastify.addHook('onResponse', (request, reply, done) => {
      release(request);
      logRequest(requestLog, request, reply);
      const route = request.routeOptions?.url ?? 'unmatched';
      metrics.httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
      done();
    });
    const tracingSettings = tracingSettingsFrom(env);
    tracing = tracingSettings ? await startTracing(fastify, tracingSettings) : null;
    setupOpenApi(app);
    await app.init();
    const writes = app.get(InFlightWrites);
    const events = app.get(MediaEvents) as MediaEvents & { flush?: () => Promise<void> };
    return {
      app,
      config,
      database,
      generatedServiceKey: serviceKey,
      async close() {
        // /readyz fails at once, while connections are still accepted and served for the delay:
        // the load balancer stops routing to the pod before the port closes.
        draining.active = true;
        if (config.shutdownDelayMs > 0) await delay(config.shutdownDelayMs);
        await closeGracefully(app, config.shutdownGraceMs);
        // Handlers whose connections the grace period cut are still storing, inserting or
        // cleaning up: they finish (for at most another grace period) before the audit entries
        // they emitted are written and the database closes.
        await writes.settled(config.shutdownGraceMs);
        await events.flush?.();
        await tracing?.shutdown();
        await database.close();
      },
    };
  } catch (error) {
    await tracing?.shutdown().catch(() => undefined);
    await database.close();
    throw error;
  }
}

const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

type RequestLog = Pick<PinoLogger['logger'], 'isLevelEnabled' | 'info' | 'warn' | 'error'>;

/**
 * One line per request: id (the caller's X-Request-Id or a generated one), method, path — never
 * the query string, which for signed URLs is a credential — status, duration and the caller's W3C
 * trace id; at error for a 5xx, at warn for a remote URL the client named that could not be fetched.
 * Headers are not logged, so no key or token can leak.
 */
function logRequest(log: RequestLog, request: FastifyRequest, reply: FastifyReply): void {
  const status = reply.statusCode;
  const level = status < 500 ? 'info' : CLIENTS_URL_STATUSES.has(status) ? 'warn' : 'error';
  const path = request.url.split('?')[0];
  if (QUIET_PATHS.has(path) || !log.isLevelEnabled(level)) return;
  const traceId = traceIdOf(request.headers.traceparent);
  log[level](
    {
      request_id: request.id,
      method: request.method,
      path,
      status,
      duration_ms: Math.round(reply.elapsedTime * 10) / 10,
      ...(traceId ? { trace_id: traceId } : {}),
    },
    'request completed',
  );
}

function trustHops(hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops;
}

/**
 * Stops accepting connections, lets requests in flight finish, and closes keep-alive connections
 * as they go idle; whatever is still open after `graceMs` is closed (a kept-alive socket can
 * otherwise hold shutdown for the whole keep-alive timeout, past Kubernetes' grace period).
 */
async function closeGracefully(app: NestFastifyApplication, graceMs: number): Promise<void> {
  const server = app.getHttpServer();
  const idle = setInterval(() => server.closeIdleConnections(), 100);
  const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearInterval(idle);
    clearTimeout(deadline);
  }
}

function setupOpenApi(app: INestApplication): void {
  // A factory: the document is built on the first request for it, not during boot (~60 ms here).
  const document = () => withHeadOperations(withErrorResponses(SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Jan Media API')
      .setDescription('Ingest images once, keep them private, hand model providers short-lived links. Errors: `{error, code, request_id}`; see docs/api.md for every code.')
      .setVersion('0.1.0')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Media-Service-Key' }, 'service-key')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Media-Admin-Key' }, 'admin-key')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-API-Key' }, 'api-key')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, 'bearer')
      .build(),
  )));
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs/openapi.json', yamlDocumentUrl: 'docs/openapi.yaml' });
}
