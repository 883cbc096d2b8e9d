/*
 * Extends the create-plugin webpack config in .config/ (see .config/README in create-plugin's docs):
 * adds the bundle budget — prints the size of dist/module.js and fails the build above 400 kB — and bundles the
 * provisioned dashboards (provisioning/dashboards/fieldline, the single source) as dist/dashboards/ for
 * plugin.json's "includes".
 */
import CopyWebpackPlugin from 'copy-webpack-plugin';
import type { Compiler, Configuration } from 'webpack';

import grafanaConfig, { type Env } from './.config/webpack/webpack.config';

// FIELDLINE_BUNDLE_BUDGET_KB overrides the budget (used to check that the build fails when it is exceeded).
const MODULE_BUDGET_BYTES = Number(process.env.FIELDLINE_BUNDLE_BUDGET_KB || 400) * 1024;

class BundleBudgetPlugin {
  apply(compiler: Compiler) {
    compiler.hooks.afterEmit.tap('BundleBudgetPlugin', (compilation) => {
      const asset = compilation.getAsset('module.js');
      if (!asset) {
        compilation.errors.push(new compiler.webpack.WebpackError('bundle budget: dist/module.js was not emitted'));
        return;
      }
      const size = asset.source.size();
      const kb = (size / 1024).toFixed(1);
      const line = `dist/module.js: ${size} bytes (${kb} kB) of a ${MODULE_BUDGET_BYTES / 1024} kB budget`;
      // eslint-disable-next-line no-console
      console.log(line);
      if (size > MODULE_BUDGET_BYTES) {
        compilation.errors.push(new compiler.webpack.WebpackError(`bundle budget exceeded: ${line}`));
      }
    });
  }
}

const config = async (env: Env): Promise<Configuration> => {
  const baseConfig = await grafanaConfig(env);
  return {
    ...baseConfig,
    plugins: [
      ...(baseConfig.plugins ?? []),
      new CopyWebpackPlugin({
        patterns: [{ from: '../provisioning/dashboards/fieldline/*.json', to: 'dashboards/[name][ext]' }],
      }),
      ...(env.production ? [new BundleBudgetPlugin()] : []),
    ],
  };
};

export default config;
