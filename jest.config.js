// One Jest run over every tier. `pnpm test` (scripts/test.mjs) starts the services the
// integration and e2e tiers need and passes their addresses in the environment.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];

const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.(t|j|mj)s$': swc },
  // NestJS 12, file-type and friends are ESM-only: let swc turn them into CommonJS too.
  transformIgnorePatterns: [],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  // file-type exports only an `import` condition, which Jest's CommonJS resolver never asks for.
  moduleNameMapper: {
    '^file-type$': '<rootDir>/apps/media-api/node_modules/file-type/index.js',
    // Relative dynamic imports carry the .js of the build output; the sources are .ts.
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
};

module.exports = {
  // Integration and e2e tests boot servers and databases; Jest reads this only at the top level.
  testTimeout: 60_000,
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.cjs'],
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/{libs,apps}/*/src/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/{libs,apps}/*/test/integration/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/apps/*/test/e2e/**/*.test.ts'],
    },
  ],
};
