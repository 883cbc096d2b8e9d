/*
 * Browser harness for `npm run e2e`: renders the real ConfigEditor and QueryEditors with Grafana's dark theme.
 * The data source is a stand-in whose resource calls answer from fixed lists (no backend here).
 */
import './boot';

import { css } from '@emotion/css';
import React, { useState } from 'react';
import { createRoot } from 'react-dom/client';

import { createTheme, DataSourceSettings, ThemeContext } from '@grafana/data';

import { ConfigEditor } from '../src/components/ConfigEditor';
import { QueryEditor } from '../src/components/QueryEditor';
import type { DataSource } from '../src/datasource';
import { FieldlineOptions, FieldlineQuery, FieldlineSecureJsonData } from '../src/types';

const theme = createTheme({ colors: { mode: 'dark' } });

const lists: Record<string, string[]> = {
  metrics: ['temperature', 'humidity', 'rssi'],
  devices: ['pico', 'node1', 'signal'],
  sensors: ['dht22', 'internal'],
  topics: ['pico/temperature/dht22', 'iiot/node1/temperature'],
};

const fakeDatasource = {
  getVariableOptions: () => [{ label: '$device', value: '$device', isVariable: true }],
  getMetrics: async () => lists.metrics,
  getDevices: async () => lists.devices,
  getSensors: async () => lists.sensors,
  getTopics: async () => lists.topics,
  // The stand-in backend's /preview: a statement of the shape the SQL builder writes (the real text is pinned by
  // the Go builder's golden files), with its bound values.
  preview: async (q: FieldlineQuery) => ({
    language: 'sql',
    text: `SELECT bucket AS time, device, sensor, avg AS value\nFROM readings_1m\nWHERE metric = $1 AND bucket >= $2 AND bucket < $3`,
    params: [`$1 = '${q.metric}'`, "$2 = '2026-12-04T00:00:00Z'", "$3 = '2026-12-04T06:00:00Z'"],
    code: `SELECT $__timeGroupAlias(time, 1m), device, sensor, avg(value) AS value\nFROM readings\nWHERE metric = '${q.metric}' AND $__timeFilter(time)\nGROUP BY 1, 2, 3\nORDER BY 1`,
  }),
} as unknown as DataSource;

const initialSettings = {
  id: 1,
  uid: 'fieldline',
  orgId: 1,
  name: 'Fieldline',
  type: 'fieldline-telemetry-datasource',
  typeName: 'Fieldline',
  typeLogoUrl: '',
  access: 'proxy',
  url: '',
  user: '',
  basicAuth: false,
  basicAuthUser: '',
  isDefault: false,
  withCredentials: false,
  readOnly: false,
  version: 1,
  jsonData: {
    postgres: { host: 'localhost:5432', database: 'fieldline', user: 'grafana', sslMode: 'disable' },
    influx: { url: 'http://localhost:8086', org: 'fieldline', bucket: 'telemetry' },
    mqtt: { url: 'http://localhost:1883', clientIdPrefix: 'grafana-fieldline' },
  },
  secureJsonFields: { postgresPassword: true },
} as unknown as DataSourceSettings<FieldlineOptions, FieldlineSecureJsonData>;

function Editor({ initial, testId }: { initial: FieldlineQuery; testId: string }) {
  const [query, setQuery] = useState(initial);
  return (
    <div data-testid={testId} className={styles.box}>
      <QueryEditor datasource={fakeDatasource} query={query} onChange={setQuery} onRunQuery={() => {}} />
    </div>
  );
}

function App() {
  const [settings, setSettings] = useState(initialSettings);
  return (
    <ThemeContext.Provider value={theme}>
      <div className={styles.page}>
        <section className={styles.column}>
          <h2 className={styles.h2}>Config editor</h2>
          <ConfigEditor options={settings} onOptionsChange={setSettings} />
        </section>
        <section className={styles.column}>
          <h2 className={styles.h2}>Query editor: SQL builder</h2>
          <Editor
            testId="qe-builder"
            initial={{
              refId: 'A',
              source: 'sql',
              mode: 'builder',
              metric: 'temperature',
              device: 'pico',
              aggregation: 'avg',
              interval: '1m',
              live: true,
            }}
          />
          <h2 className={styles.h2}>Query editor: states</h2>
          <Editor
            testId="qe-states"
            initial={{ refId: 'S', source: 'sql', mode: 'states', metric: 'status', device: 'pico', live: true }}
          />
          <h2 className={styles.h2}>Query editor: code SQL</h2>
          <Editor
            testId="qe-code"
            initial={{
              refId: 'B',
              source: 'sql',
              mode: 'code',
              live: true,
              rawSql:
                "SELECT $__timeGroupAlias(time, $__interval), device, avg(value) AS value\nFROM readings\nWHERE metric = 'temperature' AND $__timeFilter(time)\nGROUP BY 1, 2\nORDER BY 1",
            }}
          />
          <h2 className={styles.h2}>Query editor: code Flux</h2>
          <Editor
            testId="qe-flux"
            initial={{
              refId: 'D',
              source: 'flux',
              mode: 'code',
              flux: 'from(bucket: v.bucket)\n  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n  |> filter(fn: (r) => r._measurement == "temperature")',
            }}
          />
          <h2 className={styles.h2}>Query editor: MQTT</h2>
          <Editor
            testId="qe-mqtt"
            initial={{
              refId: 'C',
              source: 'mqtt',
              mode: 'builder',
              topic: 'pico/temperature/#',
              payloadFormat: 'value',
            }}
          />
        </section>
      </div>
    </ThemeContext.Provider>
  );
}

const styles = {
  page: css({
    display: 'flex',
    gap: theme.spacing(4),
    padding: theme.spacing(3),
    alignItems: 'flex-start',
  }),
  column: css({
    flex: '1 1 0',
    minWidth: 0,
  }),
  box: css({
    background: theme.colors.background.primary,
    border: `1px solid ${theme.colors.border.weak}`,
    borderRadius: theme.shape.radius.default,
    padding: theme.spacing(1),
    marginBottom: theme.spacing(2),
  }),
  h2: css({
    fontSize: theme.typography.h4.fontSize,
    margin: theme.spacing(0, 0, 1),
  }),
};

// Grafana's global styles make every box border-box; the editors' layout relies on it.
const globalCss = document.createElement('style');
globalCss.textContent = 'html { box-sizing: border-box; } *, *::before, *::after { box-sizing: inherit; }';
document.head.appendChild(globalCss);

document.body.style.background = theme.colors.background.canvas;
document.body.style.color = theme.colors.text.primary;
document.body.style.fontFamily = theme.typography.fontFamily;
document.body.style.fontSize = `${theme.typography.fontSize}px`;
document.body.style.margin = '0';

createRoot(document.getElementById('root')!).render(<App />);
