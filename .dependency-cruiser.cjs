/**
 * Architecture rules, checked in CI (`pnpm lint`). The domain knows nothing of frameworks, ORMs,
 * cloud SDKs or image libraries; adapters implement its ports; apps wire them.
 */
module.exports = {
  forbidden: [
    {
      name: 'domain-resolves-everything',
      comment: 'an import the domain cannot resolve is a dependency it does not declare',
      severity: 'error',
      from: { path: '^libs/domain/src' },
      to: { couldNotResolve: true },
    },
    {
      name: 'domain-stays-pure',
      comment: 'libs/domain may depend on libs/mediaid and Node built-ins only',
      severity: 'error',
      from: { path: '^libs/domain/src' },
      to: {
        dependencyTypesNot: ['core', 'type-only'],
        pathNot: ['^libs/domain/src', '^libs/mediaid/', 'node_modules/@jan/mediaid', '(^|/)node_modules/ulid/', 'node_modules/.*fast-check/'],
      },
    },
    {
      name: 'domain-test-tools-in-specs-only',
      severity: 'error',
      from: { path: '^libs/domain/src', pathNot: '\\.spec\\.ts$' },
      to: { path: 'fast-check' },
    },
    {
      name: 'domain-no-frameworks',
      comment: 'not even type imports of NestJS, TypeORM, pg, cloud SDKs, sharp or file-type',
      severity: 'error',
      from: { path: '^libs/domain/src' },
      to: { path: '(@nestjs|typeorm|(^|/)pg/|@aws-sdk|@google-cloud|sharp|file-type|fastify|express)' },
    },
    {
      name: 'mediaid-stays-small',
      severity: 'error',
      from: { path: '^libs/mediaid/src' },
      to: { dependencyTypesNot: ['core'], pathNot: ['^libs/mediaid/src', 'node_modules/ulid', 'node_modules/fast-check'] },
    },
    {
      name: 'libs-never-import-apps',
      severity: 'error',
      from: { path: '^libs/' },
      to: { path: '^apps/' },
    },
    {
      name: 'admin-cli-talks-through-the-sdk',
      comment: 'the CLI never imports the service',
      severity: 'error',
      from: { path: '^apps/admin-cli' },
      to: { path: '(^apps/media-api|@jan/persistence|@jan/storage-)' },
    },
    {
      name: 'sdk-has-no-internal-deps',
      severity: 'error',
      from: { path: '^libs/llm-client/src' },
      to: { path: '(^apps/|^libs/(?!llm-client)|@jan/)' },
    },
    {
      name: 'no-circular',
      comment: 'type-only cycles (a resource naming its client type) vanish at run time and are allowed',
      severity: 'error',
      from: { path: '^(libs|apps)/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    combinedDependencies: true,
  },
};
