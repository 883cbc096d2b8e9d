import { fireEvent, render, screen } from '@testing-library/react';
import React from 'react';

import { fromOf, sourceFor, VariableQueryEditor } from '../components/VariableQueryEditor';
import { makeDatasource, setupTemplateSrv } from '../test/helpers';

describe('VariableQueryEditor', () => {
  it('emits a sql builder query with the variable kind and filters', () => {
    setupTemplateSrv({});
    const { ds } = makeDatasource();
    const onChange = jest.fn();
    const { container } = render(
      <VariableQueryEditor
        datasource={ds}
        query={{ refId: 'v', source: 'sql', mode: 'builder', variable: 'sensors' }}
        onChange={onChange}
        onRunQuery={jest.fn()}
      />
    );
    expect(screen.getByText('Sensors')).toBeInTheDocument();
    const device = container.querySelector('#fl-variable-device') as HTMLInputElement;
    fireEvent.change(device, { target: { value: '$device' } });
    fireEvent.blur(device);
    expect(onChange).toHaveBeenCalledWith(
      expect.objectContaining({ source: 'sql', mode: 'builder', variable: 'sensors', device: '$device' })
    );
  });

  it('lists from the database the dashboard reads: InfluxDB and the states table too', () => {
    setupTemplateSrv({});
    const { ds } = makeDatasource();
    const onChange = jest.fn();
    const { container } = render(
      <VariableQueryEditor
        datasource={ds}
        query={{ refId: 'v', source: 'flux', mode: 'builder', variable: 'devices' }}
        onChange={onChange}
        onRunQuery={jest.fn()}
      />
    );
    expect(screen.getByText('InfluxDB')).toBeInTheDocument();
    const metric = container.querySelector('#fl-variable-metric') as HTMLInputElement;
    fireEvent.change(metric, { target: { value: 'temperature' } });
    fireEvent.blur(metric);
    expect(onChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ source: 'flux', mode: 'builder', variable: 'devices', metric: 'temperature' })
    );
    // saved queries: older ones (sql, no mode) read PostgreSQL; influxql reads InfluxDB; states mode the states table
    expect(fromOf({ source: 'sql' })).toBe('sql');
    expect(fromOf({ source: 'influxql' })).toBe('flux');
    expect(fromOf({ source: 'sql', mode: 'states' })).toBe('states');
    expect(sourceFor('states')).toEqual({ source: 'sql', mode: 'states' });
  });

  it('runs variable queries with their own source (not always PostgreSQL)', async () => {
    setupTemplateSrv({});
    const { ds } = makeDatasource();
    const query = jest.spyOn(ds, 'query').mockImplementation(() => ({} as never));
    const support = ds.variables as unknown as { query: (r: unknown) => unknown };
    support.query({ targets: [{ refId: 'v', source: 'flux', mode: 'builder', variable: 'metrics' }] });
    expect(query).toHaveBeenCalledWith(
      expect.objectContaining({ targets: [expect.objectContaining({ source: 'flux', variable: 'metrics' })] })
    );
  });
});
