/*
 * Follows the layout scaffolded by @grafana/create-plugin.
 * Useful with jest `transformIgnorePatterns` to transform ESM-only packages in node_modules.
 */
const nodeModulesToTransform = (moduleNames) => `node_modules\/(?!.*(${moduleNames.join('|')})\/.*)`;

// Known nested grafana package dependencies that only ship an ESM build
const grafanaESModules = [
  '.pnpm', // Support using pnpm symlinked packages
  '@grafana/schema',
  'd3',
  'd3-color',
  'd3-force',
  'd3-interpolate',
  'd3-scale-chromatic',
  'ol',
  'react-colorful',
  'rxjs',
  'uuid',
];

module.exports = { nodeModulesToTransform, grafanaESModules };
