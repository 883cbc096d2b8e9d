import React, { ChangeEvent } from 'react';

import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { InlineField, InlineFieldRow, Input, Select } from '@grafana/ui';

import type { DataSource } from '../datasource';
import { FieldlineOptions, FieldlineQuery, VariableKind } from '../types';

export type Props = QueryEditorProps<DataSource, FieldlineQuery, FieldlineOptions, FieldlineQuery>;

const KINDS: Array<SelectableValue<VariableKind>> = [
  { label: 'Devices', value: 'devices', description: 'Devices that reported, optionally for a metric/sensor' },
  { label: 'Metrics', value: 'metrics', description: 'Metrics, optionally for a device/sensor' },
  { label: 'Sensors', value: 'sensors', description: 'Sensors, optionally for a device/metric' },
];

/** Filters that make sense for each list (the list's own field is not a filter). */
const FILTERS: Record<VariableKind, Array<'device' | 'metric' | 'sensor'>> = {
  devices: ['metric', 'sensor'],
  metrics: ['device', 'sensor'],
  sensors: ['device', 'metric'],
};

/**
 * Editor for query variables. The variable query is a FieldlineQuery with source 'sql', mode 'builder'
 * and `variable` set; filters may use other variables (e.g. sensors for $device).
 */
export function VariableQueryEditor({ query, onChange }: Props) {
  const variable: VariableKind = query.variable ?? 'devices';
  const base: FieldlineQuery = {
    ...query,
    refId: query.refId || 'FieldlineVariable',
    source: 'sql',
    mode: 'builder',
    variable,
  };

  const set = (patch: Partial<FieldlineQuery>) => onChange({ ...base, ...patch });

  return (
    <InlineFieldRow>
      <InlineField label="List" labelWidth={10}>
        <Select<VariableKind>
          inputId="fl-variable-kind"
          width={20}
          options={KINDS}
          value={variable}
          onChange={(v) => set({ variable: v.value })}
        />
      </InlineField>
      {FILTERS[variable].map((f) => (
        <InlineField key={f} label={`for ${f}`} labelWidth={12} tooltip="Optional filter; template variables allowed">
          <Input
            id={`fl-variable-${f}`}
            width={20}
            defaultValue={query[f] ?? ''}
            placeholder="any"
            onBlur={(e: ChangeEvent<HTMLInputElement>) => set({ [f]: e.currentTarget.value || undefined })}
          />
        </InlineField>
      ))}
    </InlineFieldRow>
  );
}
