import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PATH_METADATA, METHOD_METADATA } from '@nestjs/common/constants';
import { RequestMethod } from '@nestjs/common';
import { parseAllDocuments } from 'yaml';
import { CONTROLLERS } from './app.module';
import { loadConfig, VARIABLES } from './config/media-config';

// infra/ against the code: a misspelled variable in a manifest silently does nothing, a probe on a
// path the app does not serve restarts every pod, a grace period shorter than the shutdown kills
// requests in flight, and a read-only root filesystem fails the first write outside a volume.

const ROOT = join(__dirname, '../../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface EnvVar {
  name: string;
  value?: string;
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  ports: { name: string; containerPort: number }[];
  env: EnvVar[];
  readinessProbe: Probe;
  livenessProbe: Probe;
  startupProbe: Probe;
  resources: { requests: { memory: string }; limits: { memory: string } };
  volumeMounts: { name: string; mountPath: string }[];
  securityContext: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
}
interface PodSpec {
  terminationGracePeriodSeconds: number;
  securityContext: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  volumes: { name: string }[];
}

const deploymentYaml = read('infra/k8s/deployment.yaml');
const documents = parseAllDocuments(deploymentYaml).map((d) => d.toJS() as { kind?: string; spec?: { template: { metadata: { annotations: Record<string, string> }; spec: PodSpec } } } | null);
const deployment = documents.find((d) => d?.kind === 'Deployment')!;
const pod = deployment.spec!.template.spec;
const annotations = deployment.spec!.template.metadata.annotations;
const [container] = pod.containers;

/** Variables read outside MediaConfig: OpenTelemetry's standard ones (tracing.ts) and Node's code-cache switch (start.ts). */
const READ_OUTSIDE_CONFIG = ['OTEL_SDK_DISABLED', 'OTEL_TRACES_EXPORTER', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_SERVICE_NAME', 'NODE_DISABLE_COMPILE_CACHE'];
const KNOWN = new Set([...Object.values(VARIABLES), ...READ_OUTSIDE_CONFIG]);

/** The keys the manifest says its Secret holds (the comment block after "Secret keys expected"). */
function secretKeys(): string[] {
  const block = deploymentYaml.slice(deploymentYaml.indexOf('Secret keys expected'));
  const lines = block.split('\n').filter((l) => /^#\s{2,}[A-Z]/.test(l));
  return lines.flatMap((l) => l.replace(/^#/, '').split(',')).map((s) => s.trim()).filter(Boolean);
}

/** The image's environment and user, from the Dockerfile's last stage. */
function image(): { env: Record<string, string>; user: string | undefined; cmd: string[] } {
  const lastStage = read('infra/Dockerfile').split(/^FROM /m).pop()!;
  const env: Record<string, string> = {};
  for (const line of lastStage.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const [, name, value] of line.slice(4).matchAll(/(\w+)=(\S+)/g)) env[name] = value;
  }
  const user = /^USER (\S+)/m.exec(lastStage)?.[1];
  const cmd = JSON.parse(/^CMD (\[.*\])/m.exec(lastStage)?.[1] ?? '[]') as string[];
  return { env, user, cmd };
}

/** What the app reads: the image's environment, the manifest's, and placeholder secrets. */
function deployedConfig() {
  const placeholders = Object.fromEntries(secretKeys().map((k) => [k, k.endsWith('_DSN') ? 'postgres://u@db.example:5432/media' : `placeholder-${k.toLowerCase()}`]));
  const env = { ...image().env, ...placeholders, ...Object.fromEntries(container.env.map((e) => [e.name, e.value])) };
  return loadConfig(env);
}

/** Every GET route the app serves, from its controllers' decorators. */
function getRoutes(): Set<string> {
  const routes = new Set<string>();
  for (const controller of CONTROLLERS) {
    const prefix = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '');
    for (const name of Object.getOwnPropertyNames(controller.prototype)) {
      const handler: unknown = Reflect.get(controller.prototype as object, name);
      if (typeof handler !== 'function' || Reflect.getMetadata(METHOD_METADATA, handler) !== RequestMethod.GET) continue;
      const path = String(Reflect.getMetadata(PATH_METADATA, handler) ?? '');
      routes.add(`/${[prefix, path].filter((p) => p && p !== '/').join('/')}`.replace(/\/+/g, '/'));
    }
  }
  return routes;
}

function mebibytes(quantity: string): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!match) throw new Error(`unexpected memory quantity ${quantity}`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}

describe('infra/k8s/deployment.yaml against the code', () => {
  it('every variable it sets, and every key its Secret is said to hold, is one the app reads', () => {
    const names = [...container.env.map((e) => e.name), ...secretKeys()];
    expect(secretKeys().length).toBeGreaterThan(0);
    expect(names.filter((n) => !KNOWN.has(n))).toEqual([]);
  });

  it('the values it sets pass the configuration check the app runs at boot', () => {
    expect(() => deployedConfig()).not.toThrow();
    expect(deployedConfig().storageBackend).toBe('s3');
  });

  it('the container port, the probes and the scrape annotation point at the port and routes the app serves', () => {
    const config = deployedConfig();
    const port = (name: string | number) => (typeof name === 'number' ? name : container.ports.find((p) => p.name === name)?.containerPort);
    const routes = getRoutes();
    expect(container.ports.map((p) => p.containerPort)).toEqual([config.port]);
    expect(Number(annotations['prometheus.io/port'])).toBe(config.port);
    expect(routes.has(annotations['prometheus.io/path'])).toBe(true);
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
      expect(port(probe.httpGet.port)).toBe(config.port);
      expect(routes).toContain(probe.httpGet.path);
    }
    // Readiness checks the dependencies; liveness must not, or a slow database restarts every pod.
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
  });

  it('terminationGracePeriodSeconds outlasts the shutdown: MEDIA_SHUTDOWN_DELAY, the drain and the writes it cut (MEDIA_SHUTDOWN_GRACE twice)', () => {
    const config = deployedConfig();
    expect(config.shutdownDelayMs).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.shutdownDelayMs + 2 * config.shutdownGraceMs);
  });

  it('with a read-only root filesystem, every directory the app and libvips write to is a mounted volume', () => {
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    const config = deployedConfig();
    const env = { ...image().env, ...Object.fromEntries(container.env.map((e) => [e.name, e.value])) };
    // The data directory holds the upload staging (<dataDir>/tmp); TMPDIR (default /tmp) is where
    // libvips, Node and libraries put their temporary files.
    const written = [config.dataDir, env.TMPDIR ?? '/tmp'];
    const mounted = container.volumeMounts.map((m) => m.mountPath);
    expect(written.filter((dir) => !mounted.some((m) => dir === m || dir.startsWith(`${m}/`)))).toEqual([]);
    const volumes = new Set(pod.volumes.map((v) => v.name));
    expect(container.volumeMounts.filter((m) => !volumes.has(m.name))).toEqual([]);
  });

  it('runs as a non-root user, as the image does', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(image().user).toBeDefined();
    expect(image().user).not.toMatch(/^(root|0)$/);
  });

  it('requests the memory the service peaks at under ingest (docs/performance.md: at most 300 MB), with room above it', () => {
    const budgetMiB = 300 / 1.048576;
    expect(mebibytes(container.resources.requests.memory)).toBeGreaterThanOrEqual(budgetMiB);
    expect(mebibytes(container.resources.limits.memory)).toBeGreaterThan(mebibytes(container.resources.requests.memory));
  });
});

describe('infra/Dockerfile against the code', () => {
  it("starts what `pnpm start` starts, and primes the code cache with that same entry", () => {
    const start = (JSON.parse(read('apps/media-api/package.json')) as { scripts: { start: string } }).scripts.start;
    expect(image().cmd.join(' ')).toBe(start);
    expect(read('infra/Dockerfile')).toContain(`RUN JAN_MEDIA_CODE_CACHE_PRIME=1 ${start}`);
  });
});
