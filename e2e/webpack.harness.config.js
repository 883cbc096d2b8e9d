// Bundles e2e/harness.tsx (with React and @grafana/* included, unlike dist/module.js) for the browser check.
const path = require('path');

module.exports = {
  mode: 'development',
  devtool: false,
  context: __dirname,
  entry: { harness: './harness.tsx' },
  output: { path: path.resolve(__dirname, 'out'), filename: '[name].js', publicPath: '/' },
  cache: {
    type: 'filesystem',
    cacheDirectory: path.resolve(__dirname, '../node_modules/.cache/webpack-e2e'),
    buildDependencies: { config: [__filename] },
  },
  module: {
    rules: [
      // @grafana/ui's ESM build imports CommonJS paths without extensions (react-use/lib/…)
      { test: /\.m?js$/, resolve: { fullySpecified: false } },
      {
        test: /\.[tj]sx?$/,
        exclude: /node_modules/,
        use: {
          loader: 'swc-loader',
          options: {
            jsc: {
              target: 'es2020',
              parser: { syntax: 'typescript', tsx: true },
              transform: { react: { runtime: 'classic' } },
            },
          },
        },
      },
      { test: /\.css$/, use: ['style-loader', 'css-loader'] },
      { test: /\.(png|jpe?g|gif|svg|woff2?|ttf|eot)$/, type: 'asset/resource' },
    ],
  },
  resolve: {
    // react-use's CommonJS build under a strict-ESM importer loses its default export; use its ESM build
    alias: { 'react-use/lib': 'react-use/esm' },
    extensions: ['.js', '.jsx', '.ts', '.tsx', '.mjs'],
    fallback: { fs: false, path: false, os: false, crypto: false, stream: false, buffer: false, util: false },
  },
  performance: { hints: false },
  stats: 'errors-warnings',
};
