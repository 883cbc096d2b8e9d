import React, { useCallback, useState } from 'react';

import { SelectableValue } from '@grafana/data';
import { Select } from '@grafana/ui';

import { NameOption } from '../datasource';

interface Props {
  inputId: string;
  value?: string;
  placeholder?: string;
  width?: number;
  /** Fetches the names from a backend resource; called each time the menu opens. */
  load: () => Promise<string[]>;
  /** Dashboard template variables offered above the names. */
  variables: NameOption[];
  onChange: (value: string | undefined) => void;
}

/** A Select fed by a backend resource, accepting custom values and template variables. */
export function NamePicker({ inputId, value, placeholder, width, load, variables, onChange }: Props) {
  const [options, setOptions] = useState<Array<SelectableValue<string>>>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | undefined>();

  const onOpen = useCallback(async () => {
    setLoading(true);
    setError(undefined);
    try {
      const names = await load();
      setOptions(names.map((n) => ({ label: n, value: n })));
    } catch (e) {
      setOptions([]);
      setError(e instanceof Error ? e.message : 'could not load values');
    } finally {
      setLoading(false);
    }
  }, [load]);

  const all: Array<SelectableValue<string>> = [
    ...variables.map((v) => ({ label: v.label, value: v.value, description: 'Template variable' })),
    ...options,
  ];
  const current: SelectableValue<string> | null = value ? { label: value, value } : null;

  return (
    <Select<string>
      inputId={inputId}
      width={width}
      value={current}
      options={all}
      isLoading={loading}
      placeholder={placeholder}
      noOptionsMessage={error ? `Error: ${error}` : 'No values found; type one'}
      allowCustomValue
      isClearable
      onOpenMenu={onOpen}
      onChange={(v) => onChange(v?.value || undefined)}
      createOptionPosition="first"
    />
  );
}
