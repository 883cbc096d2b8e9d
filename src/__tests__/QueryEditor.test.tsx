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
    expect(getResource).toHaveBeenCalledWith('metrics', { device: 'pico' });

    fireEvent.click(screen.getByText('humidity'));
    expect(changes[changes.length - 1].metric).toBe('humidity');
  });

  it('feeds the device picker filtered by the chosen metric', async () => {
    const { ds, getResource } = makeDatasource({ devices: ['pico', 'node1'] });
    const { container } = render(<Harness ds={ds} initial={{ ...base, metric: 'temperature' }} changes={[]} />);
    await openSelect(container, 'fl-device');
    expect(await screen.findByText('node1')).toBeInTheDocument();
    expect(getResource).toHaveBeenCalledWith('devices', { metric: 'temperature' });
  });

  it('keeps the metric when switching builder → code → builder', async () => {
    const { ds } = makeDatasource({ metrics: ['temperature'] });
    const changes: FieldlineQuery[] = [];
    render(<Harness ds={ds} initial={{ ...base, metric: 'temperature', device: 'pico' }} changes={changes} />);

    fireEvent.click(screen.getByLabelText('Code'));
    let last = changes[changes.length - 1];
    expect(last.mode).toBe('code');
    expect(last.metric).toBe('temperature');
    expect(last.rawSql).toContain("metric = 'temperature'");
    expect(screen.getByLabelText('SQL query')).toHaveValue(last.rawSql);

    fireEvent.click(screen.getByLabelText('Builder'));
    last = changes[changes.length - 1];
    expect(last.mode).toBe('builder');
    expect(last.metric).toBe('temperature');
    expect(last.rawSql).toContain('temperature'); // the code is kept as well
    expect(screen.getByText('temperature')).toBeInTheDocument();
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

  it('updates the preview when the aggregation changes', async () => {
    const { ds } = makeDatasource();
    const { container } = render(<Harness ds={ds} initial={{ ...base, metric: 'temperature' }} changes={[]} />);
    const preview = screen.getByTestId('fieldline-preview');
    expect(preview.textContent).toContain('avg(value)');
    expect(preview.textContent).toContain('FROM readings');

    await openSelect(container, 'fl-aggregation');
    fireEvent.click(await screen.findByText('max'));
    await waitFor(() => expect(screen.getByTestId('fieldline-preview').textContent).toContain('max(value)'));
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

  it('shows a Flux preview for the flux source', () => {
    const { ds } = makeDatasource();
    render(<Harness ds={ds} initial={{ ...base, source: 'flux', metric: 'temperature' }} changes={[]} />);
    expect(screen.getByTestId('fieldline-preview').textContent).toContain('v.timeRangeStart');
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
  it('says when a live query shows history only (Flux, table format), not for aggregated SQL', () => {
    const { ds } = makeDatasource();
    const { unmount } = render(
      <Harness ds={ds} initial={{ ...base, metric: 'temperature', aggregation: 'avg', live: true }} changes={[]} />
    );
    expect(screen.queryByText(/History only/)).not.toBeInTheDocument();
    expect(screen.getByTestId('fieldline-preview').textContent).toContain('each bucket once it has closed');
    unmount();
    render(<Harness ds={ds} initial={{ ...base, source: 'flux', metric: 'temperature', live: true }} changes={[]} />);
    expect(screen.getByText(/a Flux query shows the history/)).toBeInTheDocument();
  });

  it('streams raw builder queries: no notice, preview says live', () => {
    const { ds } = makeDatasource();
    render(
      <Harness ds={ds} initial={{ ...base, metric: 'temperature', aggregation: 'none', live: true }} changes={[]} />
    );
    expect(screen.queryByText(/History only/)).not.toBeInTheDocument();
    expect(screen.getByTestId('fieldline-preview').textContent).toContain('then live');
    expect(screen.getByTestId('fieldline-preview').textContent).toContain('SELECT time, device, sensor, value');
  });
});
