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

/** Where the list is read: the database a dashboard's queries read (its variables list the same names). */
type From = 'sql' | 'flux' | 'states';
const FROM: Array<SelectableValue<From>> = [
  {
    label: 'PostgreSQL',
    value: 'sql',
    description: 'Readings in PostgreSQL / TimescaleDB (your own table when mapped)',
  },
  { label: 'InfluxDB', value: 'flux', description: 'Series in InfluxDB, with the data source’s tag mapping' },
  { label: 'States', value: 'states', description: 'Text and on/off values in PostgreSQL (device status, relays)' },
];

/** Where a saved variable query reads (older ones have source sql and no mode). */
export function fromOf(q: Partial<FieldlineQuery>): From {
  if (q.source === 'flux' || q.source === 'influxql') {
    return 'flux';
  }
  return q.mode === 'states' ? 'states' : 'sql';
}

/** The source and mode of a variable query reading from `from`. */
export function sourceFor(from: From): Pick<FieldlineQuery, 'source' | 'mode'> {
  switch (from) {
    case 'flux':
      return { source: 'flux', mode: 'builder' };
    case 'states':
      return { source: 'sql', mode: 'states' };
  }
  return { source: 'sql', mode: 'builder' };
}

/** Filters that make sense for each list (the list's own field is not a filter). */
const FILTERS: Record<VariableKind, Array<'device' | 'metric' | 'sensor'>> = {
  devices: ['metric', 'sensor'],
  metrics: ['device', 'sensor'],
  sensors: ['device', 'metric'],
};

/**
 * Editor for query variables. The variable query is a FieldlineQuery with `variable` set, and the source (sql or
 * flux) and mode (builder or states) of the database it lists from; filters may use other variables (e.g. sensors
 * for $device).
 */
export function VariableQueryEditor({ query, onChange }: Props) {
  const variable: VariableKind = query.variable ?? 'devices';
  const from = fromOf(query);
  const base: FieldlineQuery = {
    ...query,
    refId: query.refId || 'FieldlineVariable',
    ...sourceFor(from),
    variable,
  };

  const set = (patch: Partial<FieldlineQuery>) => onChange({ ...base, ...patch });

  return (
    <InlineFieldRow>
      <InlineField label="From" labelWidth={8}>
        <Select<From>
          inputId="fl-variable-from"
          width={16}
          options={FROM}
          value={from}
          onChange={(v) => set(sourceFor(v.value ?? 'sql'))}
        />
      </InlineField>
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
