// Runs before @grafana/* are imported: the minimal boot data Grafana's runtime reads at import time.
const w = window as unknown as Record<string, unknown>;
w.grafanaBootData = { settings: { buildInfo: { version: '11.6.0' }, featureToggles: {} }, user: {}, navTree: [] };
w.__grafana_public_path__ = 'public/';
export {};
