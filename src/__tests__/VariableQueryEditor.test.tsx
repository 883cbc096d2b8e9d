import { fireEvent, render, screen } from '@testing-library/react';
import React from 'react';

import { VariableQueryEditor } from '../components/VariableQueryEditor';
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
});
