import baseConfig from './.config/eslint.config.mjs';

export default [
  {
    // Go and other non-frontend trees, build output and e2e artefacts
    ignores: ['pkg/', 'ingester/', 'firmware/', 'scripts/', 'internal/', 'provisioning/', 'e2e/out/', '.config/'],
  },
  ...baseConfig,
  {
    files: ['src/**/*.{ts,tsx}'],
    rules: {
      // Combobox, Select's successor, does not exist in Grafana 10.4 (our grafanaDependency) and @grafana/ui is
      // provided by Grafana at runtime, so Select stays until the minimum version moves past 11.x.
      '@typescript-eslint/no-deprecated': [
        'warn',
        { allow: [{ from: 'package', package: '@grafana/ui', name: 'Select' }] },
      ],
    },
  },
];
