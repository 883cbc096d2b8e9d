import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import React, { useState } from 'react';

import { QueryEditor } from '../components/QueryEditor';
import { DataSource } from '../datasource';
import { FieldlineQuery } from '../types';
import { makeDatasource, setupTemplateSrv } from '../test/helpers';
import { fakeMonaco } from '../test/mockCodeEditor';

// Monaco does not run in jsdom: the code editors render a textarea stand-in (src/test/mockCodeEditor.tsx)
jest.mock('@grafana/ui', () => ({
  ...jest.requireActual('@grafana/ui'),
  CodeEditor: jest.requireActual('../test/mockCodeEditor').MockCodeEditor,
}));

/** Holds the query in state the way Grafana's query row does, and records every change. */
function Harness({ ds, initial, changes }: { ds: DataSource; initial: FieldlineQuery; changes: FieldlineQuery[] }) {
  const [query, setQuery] = useState(initial);
  return (
    <QueryEditor
      datasource={ds}
      query={query}
      onRunQuery={() => {}}
      onChange={(q) => {
        changes.push(q);
        setQuery(q);
      }}
    />
  );
}

const base: FieldlineQuery = { refId: 'A', source: 'sql', mode: 'builder' };

async function openSelect(container: HTMLElement, id: string) {
  const input = container.querySelector(`#${id}`) as HTMLInputElement;
  fireEvent.keyDown(input, { key: 'ArrowDown', keyCode: 40 });
  return input;
}

describe('QueryEditor', () => {
  beforeEach(() => setupTemplateSrv({ device: ['pico', 'node1'] }));

  it('feeds the metric picker from the metrics resource and picks a value', async () => {
    const { ds, getResource } = makeDatasource({ metrics: ['temperature', 'humidity'] });
    const changes: FieldlineQuery[] = [];
    const { container } = render(<Harness ds={ds} initial={{ ...base, device: 'pico' }} changes={changes} />);

    await openSelect(container, 'fl-metric');
    expect(await screen.findByText('humidity')).toBeInTheDocument();
    expect(screen.getByText('$device')).toBeInTheDocument(); // template variables are offered too
    expect(getResource).toHaveBeenCalledWith('metrics', { device: 'pico', source: 'sql' });

    fireEvent.click(screen.getByText('humidity'));
    expect(changes[changes.length - 1].metric).toBe('humidity');
  });

  it('feeds the device picker filtered by the chosen metric', async () => {
    const { ds, getResource } = makeDatasource({ devices: ['pico', 'node1'] });
    const { container } = render(<Harness ds={ds} initial={{ ...base, metric: 'temperature' }} changes={[]} />);
    await openSelect(container, 'fl-device');
    expect(await screen.findByText('node1')).toBeInTheDocument();
    expect(getResource).toHaveBeenCalledWith('devices', { metric: 'temperature', source: 'sql' });
  });

  it('keeps the metric when switching builder → code → builder, seeding the code from the backend', async () => {
    const { ds, postResource } = makeDatasource({ metrics: ['temperature'] });
    const changes: FieldlineQuery[] = [];
    render(<Harness ds={ds} initial={{ ...base, metric: 'temperature', device: 'pico' }} changes={changes} />);

    fireEvent.click(screen.getByLabelText('Code'));
    await waitFor(() => expect(changes[changes.length - 1]?.mode).toBe('code'));
    let last = changes[changes.length - 1];
    expect(last.metric).toBe('temperature');
    expect(last.rawSql).toBe("seed sql metric = 'temperature'"); // the backend's code, not a copy
    expect(postResource).toHaveBeenCalledWith(
      'preview',
      expect.objectContaining({ query: expect.objectContaining({ mode: 'builder', device: 'pico' }) })
    );
    expect(screen.getByLabelText('SQL query')).toHaveValue(last.rawSql);

    fireEvent.click(screen.getByLabelText('Builder'));
    last = changes[changes.length - 1];
    expect(last.mode).toBe('builder');
    expect(last.metric).toBe('temperature');
    expect(last.rawSql).toContain('temperature'); // the code is kept as well
    expect(screen.getByText('temperature')).toBeInTheDocument();
  });

  it('switches to code with an empty text and says why when the backend cannot seed it', async () => {
    const { ds } = makeDatasource({}, () => {
      throw { data: { error: 'PostgreSQL: table readings does not exist' } };
    });
    const changes: FieldlineQuery[] = [];
    render(<Harness ds={ds} initial={{ ...base, metric: 'temperature' }} changes={changes} />);
    fireEvent.click(screen.getByLabelText('Code'));
    await waitFor(() => expect(changes[changes.length - 1]?.mode).toBe('code'));
    expect(changes[changes.length - 1].rawSql ?? '').toBe('');
  });

  it('offers states for SQL only: pickers list the states table, no aggregation, a state filter instead', async () => {
    const { ds, getResource, postResource } = makeDatasource({ metrics: ['status', 'relay'] });
    const changes: FieldlineQuery[] = [];
    const { container } = render(
      <Harness ds={ds} initial={{ ...base, metric: 'status', aggregation: 'avg' }} changes={changes} />
    );
    fireEvent.click(screen.getByLabelText('States'));
    expect(changes[changes.length - 1].mode).toBe('states');
    expect(container.querySelector('#fl-aggregation')).toBeNull();
    expect(container.querySelector('#fl-interval')).toBeNull();
    const state = container.querySelector('#fl-state') as HTMLInputElement;
    fireEvent.blur(state, { target: { value: 'offline' } });
    expect(changes[changes.length - 1].state).toBe('offline');
    await openSelect(container, 'fl-metric');
    expect(await screen.findByText('relay')).toBeInTheDocument();
    expect(getResource).toHaveBeenCalledWith('metrics', { source: 'sql', mode: 'states' });
    await waitFor(() =>
      expect(postResource).toHaveBeenLastCalledWith(
        'preview',
        expect.objectContaining({ query: expect.objectContaining({ mode: 'states', state: 'offline' }) })
      )
    );
    // Flux has no states: switching there goes back to the builder.
    fireEvent.click(screen.getByLabelText('Flux'));
    expect(changes[changes.length - 1]).toEqual(expect.objectContaining({ source: 'flux', mode: 'builder' }));
    expect(screen.queryByLabelText('States')).toBeNull();
  });

  it('keeps the selector when switching to MQTT (topic from the template)', () => {
    const { ds } = makeDatasource();
    const changes: FieldlineQuery[] = [];
    render(<Harness ds={ds} initial={{ ...base, metric: 'temperature', device: 'pico' }} changes={changes} />);
    fireEvent.click(screen.getByLabelText('MQTT'));
    const last = changes[changes.length - 1];
    expect(last.source).toBe('mqtt');
    expect(last.topic).toBe('pico/temperature/+');
    expect(last.metric).toBe('temperature');
    expect(screen.getByText('Payload')).toBeInTheDocument();
  });

  it('shows what the backend runs, asked again when the aggregation changes', async () => {
    const { ds, postResource } = makeDatasource();
    const { container } = render(
      <Harness ds={ds} initial={{ ...base, metric: 'temperature', aggregation: 'avg' }} changes={[]} />
    );
    await waitFor(() =>
      expect(screen.getByTestId('fieldline-preview').textContent).toContain('backend sql avg temperature')
    );
    expect(screen.getByTestId('fieldline-preview').textContent).toContain("-- $1 = 'temperature'");

    await openSelect(container, 'fl-aggregation');
    fireEvent.click(await screen.findByText('max'));
    await waitFor(() =>
      expect(screen.getByTestId('fieldline-preview').textContent).toContain('backend sql max temperature')
    );
    expect(postResource).toHaveBeenLastCalledWith(
      'preview',
      expect.objectContaining({ query: expect.objectContaining({ aggregation: 'max' }) })
    );
  });

  it('says why there is no preview when the backend refuses the query', async () => {
    const { ds } = makeDatasource({}, () => {
      throw { data: { error: 'interval 1s gives 2592001 buckets for this time range' } };
    });
    render(<Harness ds={ds} initial={{ ...base, metric: 'temperature', interval: '1s' }} changes={[]} />);
    expect(await screen.findByText(/gives 2592001 buckets/)).toBeInTheDocument();
  });

  it('sets fill for aggregated builder queries', async () => {
    const { ds } = makeDatasource();
    const changes: FieldlineQuery[] = [];
    const { container } = render(
      <Harness ds={ds} initial={{ ...base, metric: 'temperature', aggregation: 'avg' }} changes={changes} />
    );
    await openSelect(container, 'fl-fill');
    fireEvent.click(await screen.findByText('previous'));
    expect(changes[changes.length - 1].fill).toBe('previous');
  });

  it('has no fill for raw queries', () => {
    const { ds } = makeDatasource();
    const { container } = render(
      <Harness ds={ds} initial={{ ...base, metric: 'temperature', aggregation: 'none' }} changes={[]} />
    );
    expect(container.querySelector('#fl-fill')).toBeNull();
  });

  it('asks the backend for the Flux of the flux source', async () => {
    const { ds } = makeDatasource();
    render(<Harness ds={ds} initial={{ ...base, source: 'flux', metric: 'temperature' }} changes={[]} />);
    await waitFor(() =>
      expect(screen.getByTestId('fieldline-preview').textContent).toContain('backend flux none temperature')
    );
  });

  it('shows the macro reference and the live note in code SQL', () => {
    const { ds } = makeDatasource();
    render(<Harness ds={ds} initial={{ ...base, mode: 'code', rawSql: 'SELECT 1', live: true }} changes={[]} />);
    expect(screen.getByText(/Code SQL queries show the history for the range/)).toBeInTheDocument();
    fireEvent.click(screen.getByText('Macros'));
    expect(screen.getByText('$__timeFilter(time)')).toBeInTheDocument();
    expect(screen.getByText('$__unixEpochFilter(column)')).toBeInTheDocument();
  });
});

describe('code editors', () => {
  beforeEach(() => fakeMonaco.reset());

  it('edits code SQL in the code editor: changes commit without running, leaving it runs the query', () => {
    const { ds } = makeDatasource();
    const changes: FieldlineQuery[] = [];
    const runs: number[] = [];
    function Run() {
      const [query, setQuery] = useState<FieldlineQuery>({ ...base, mode: 'code', rawSql: 'SELECT 1' });
      return (
        <QueryEditor
          datasource={ds}
          query={query}
          onRunQuery={() => runs.push(1)}
          onChange={(q) => {
            changes.push(q);
            setQuery(q);
          }}
        />
      );
    }
    const { container } = render(<Run />);
    const editor = screen.getByLabelText('SQL query');
    expect(editor).toHaveAttribute('data-language', 'sql');
    expect(container.querySelector('#fl-rawsql')).toContainElement(editor);
    fireEvent.change(editor, { target: { value: 'SELECT 2' } });
    expect(changes[changes.length - 1].rawSql).toBe('SELECT 2');
    expect(runs).toHaveLength(0);
    fireEvent.blur(editor);
    expect(runs).toHaveLength(1);
    expect(changes[changes.length - 1].rawSql).toBe('SELECT 2');
    expect(fakeMonaco.providers.map((p) => p.language)).toEqual(['sql']);
  });

  it('shows code Flux in the code editor with the flux language registered', () => {
    const { ds } = makeDatasource();
    const { container } = render(
      <Harness
        ds={ds}
        initial={{ ...base, source: 'flux', mode: 'code', flux: 'from(bucket: v.bucket)' }}
        changes={[]}
      />
    );
    const editor = screen.getByLabelText('Flux query');
    expect(editor).toHaveValue('from(bucket: v.bucket)');
    expect(editor).toHaveAttribute('data-language', 'flux');
    expect(container.querySelector('#fl-flux')).toContainElement(editor);
    expect(fakeMonaco.languages.registered).toEqual(['flux']);
    expect(fakeMonaco.providers.map((p) => p.language)).toEqual(['flux']);
  });

  it('disposes the completion provider when the code editor goes away', () => {
    const { ds } = makeDatasource();
    render(<Harness ds={ds} initial={{ ...base, mode: 'code', rawSql: 'SELECT 1' }} changes={[]} />);
    expect(fakeMonaco.providers).toHaveLength(1);
    expect(fakeMonaco.providers[0].disposed).toBe(false);
    fireEvent.click(screen.getByLabelText('Builder'));
    expect(screen.queryByLabelText('SQL query')).not.toBeInTheDocument();
    expect(fakeMonaco.providers[0].disposed).toBe(true);
  });
});

describe('live notices', () => {
  it('says when a live query shows history only (Flux, table format), not for aggregated SQL', async () => {
    const { ds } = makeDatasource();
    const { unmount } = render(
      <Harness ds={ds} initial={{ ...base, metric: 'temperature', aggregation: 'avg', live: true }} changes={[]} />
    );
    expect(screen.queryByText(/History only/)).not.toBeInTheDocument();
    await waitFor(() =>
      expect(screen.getByTestId('fieldline-preview').textContent).toContain('-- Live: from the backend')
    );
    unmount();
    render(<Harness ds={ds} initial={{ ...base, source: 'flux', metric: 'temperature', live: true }} changes={[]} />);
    expect(screen.getByText(/a Flux query shows the history/)).toBeInTheDocument();
  });

  it('streams raw builder queries: no notice, preview shows the backend notes', async () => {
    const { ds } = makeDatasource();
    render(
      <Harness ds={ds} initial={{ ...base, metric: 'temperature', aggregation: 'none', live: true }} changes={[]} />
    );
    expect(screen.queryByText(/History only/)).not.toBeInTheDocument();
    await waitFor(() =>
      expect(screen.getByTestId('fieldline-preview').textContent).toContain('backend sql none temperature')
    );
    expect(screen.getByTestId('fieldline-preview').textContent).toContain('-- Live: from the backend');
  });
});

describe('pickers know the source', () => {
  it('asks InfluxDB for the Flux builder', async () => {
    setupTemplateSrv({});
    const { ds, getResource } = makeDatasource({ metrics: ['temperature'] });
    const { container } = render(<Harness ds={ds} initial={{ ...base, source: 'flux' }} changes={[]} />);
    await openSelect(container, 'fl-metric');
    expect(await screen.findByText('temperature')).toBeInTheDocument();
    expect(getResource).toHaveBeenCalledWith('metrics', { source: 'flux' });
  });
});

describe('MQTT JSON payloads', () => {
  it('sets field paths and the time field for JSON payloads only', () => {
    setupTemplateSrv({});
    const { ds } = makeDatasource();
    const changes: FieldlineQuery[] = [];
    const { container, unmount } = render(
      <Harness
        ds={ds}
        initial={{ ...base, source: 'mqtt', topic: 'iiot/#', payloadFormat: 'json' }}
        changes={changes}
      />
    );
    fireEvent.blur(container.querySelector('#fl-json-fields') as HTMLInputElement, {
      target: { value: 'temp, env.hum' },
    });
    expect(changes[changes.length - 1].jsonFields).toBe('temp, env.hum');
    fireEvent.blur(container.querySelector('#fl-json-time') as HTMLInputElement, { target: { value: 'ts' } });
    expect(changes[changes.length - 1].jsonTimeField).toBe('ts');
    unmount();
    const other = render(
      <Harness ds={ds} initial={{ ...base, source: 'mqtt', topic: 'iiot/#', payloadFormat: 'value' }} changes={[]} />
    );
    expect(other.container.querySelector('#fl-json-fields')).toBeNull();
  });
});

describe('InfluxQL', () => {
  it('edits code InfluxQL without builder or mode', () => {
    setupTemplateSrv({});
    const { ds } = makeDatasource();
    const changes: FieldlineQuery[] = [];
    render(
      <Harness
        ds={ds}
        initial={{ ...base, source: 'influxql', influxql: 'SELECT 1' } as FieldlineQuery}
        changes={changes}
      />
    );
    expect(screen.getByLabelText('InfluxQL query')).toHaveValue('SELECT 1');
    expect(screen.queryByLabelText('Builder')).not.toBeInTheDocument();
    expect(screen.queryByText('Metric')).not.toBeInTheDocument();
  });
});
