// Runs before @grafana/* are imported: the minimal boot data Grafana's runtime reads at import time.
const w = window as unknown as Record<string, unknown>;
w.grafanaBootData = { settings: { buildInfo: { version: '11.6.0' }, featureToggles: {} }, user: {}, navTree: [] };
w.__grafana_public_path__ = 'public/';
// Monaco's editor worker, bundled by webpack (new Worker(new URL(…))); Grafana sets MonacoEnvironment itself.
w.MonacoEnvironment = {
  getWorker: () => new Worker(new URL('monaco-editor/esm/vs/editor/editor.worker.js', import.meta.url)),
};
export {};
