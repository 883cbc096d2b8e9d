/*
 * Follows the layout scaffolded by @grafana/create-plugin. Extend in ../../webpack.config.ts, not here.
 */
export const SOURCE_DIR = 'src';
export const DIST_DIR = 'dist';
