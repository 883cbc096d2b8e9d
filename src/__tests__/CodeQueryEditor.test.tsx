import { render } from '@testing-library/react';
import React from 'react';

import {
  CodeQueryEditor,
  completionProvider,
  loadNames,
  NameSource,
  NAMES_TTL_MS,
} from '../components/CodeQueryEditor';
import { MAX_NAMES } from '../completion';
import { fakeModel, fakeMonaco } from '../test/mockCodeEditor';
import type { Monaco } from '@grafana/ui';

jest.mock('@grafana/ui', () => ({
  ...jest.requireActual('@grafana/ui'),
  CodeEditor: jest.requireActual('../test/mockCodeEditor').MockCodeEditor,
}));

function names(lists: Partial<Record<'metrics' | 'devices' | 'sensors', string[]>> = {}) {
  return {
    getMetrics: jest.fn(async () => lists.metrics ?? []),
    getDevices: jest.fn(async () => lists.devices ?? []),
    getSensors: jest.fn(async () => lists.sensors ?? []),
  } satisfies NameSource;
}

async function suggest(providerIndex: number, modelId: string, text: string) {
  const { provider } = fakeMonaco.providers[providerIndex];
  const model = fakeModel(modelId, text);
  const position = model.end;
  return provider.provideCompletionItems(model, position);
}

describe('CodeQueryEditor', () => {
  beforeEach(() => fakeMonaco.reset());

  const props = { id: 'x', label: 'SQL query', value: '', onChange: () => {}, onBlur: () => {} };

  it('registers one provider per mount, answering only for its own model, disposed on unmount', async () => {
    const ds = names({ metrics: ['temperature'], devices: ['pico'], sensors: ['dht22'] });
    const first = render(<CodeQueryEditor {...props} source="sql" datasource={ds} />);
    const second = render(<CodeQueryEditor {...props} source="sql" datasource={ds} />);
    expect(fakeMonaco.providers).toHaveLength(2);
    const modelOf = (c: HTMLElement) => c.querySelector('textarea')!.getAttribute('data-model')!;
    const model1 = modelOf(first.container);
    const model2 = modelOf(second.container);
    expect(model1).not.toBe(model2);

    expect(await suggest(0, model2, "metric = '")).toBeUndefined();
    const result = await suggest(0, model1, "SELECT * FROM readings WHERE metric = 'te");
    expect(result.suggestions).toEqual([
      expect.objectContaining({
        label: 'temperature',
        insertText: 'temperature',
        kind: fakeMonaco.languages.CompletionItemKind.Constant,
        range: { startLineNumber: 1, endLineNumber: 1, startColumn: 40, endColumn: 42 },
      }),
    ]);
    const macros = await suggest(0, model1, 'SELECT\n  $__');
    const tf = macros.suggestions.find((s: { label: string }) => s.label === '$__timeFilter');
    expect(tf).toMatchObject({
      kind: fakeMonaco.languages.CompletionItemKind.Function,
      insertTextRules: fakeMonaco.languages.CompletionItemInsertTextRule.InsertAsSnippet,
      range: { startLineNumber: 2, startColumn: 3, endColumn: 6 },
    });

    first.unmount();
    expect(fakeMonaco.providers.map((p) => p.disposed)).toEqual([true, false]);
    second.unmount();
    expect(fakeMonaco.providers.map((p) => p.disposed)).toEqual([true, true]);
  });

  it('uses the flux language and its tag comparisons', async () => {
    const ds = names({ metrics: ['rssi'], devices: ['node1'] });
    const { getByTestId } = render(<CodeQueryEditor {...props} label="Flux query" source="flux" datasource={ds} />);
    expect(fakeMonaco.providers[0].language).toBe('flux');
    const model = getByTestId('mock-code-editor').getAttribute('data-model')!;
    const result = await suggest(0, model, 'from(bucket: v.bucket)\n  |> filter(fn: (r) => r._measurement == "');
    expect(result.suggestions.map((s: { label: string }) => s.label)).toEqual(['rssi']);
  });

  it('fetches the names once per TTL and bounds each list', async () => {
    const many = Array.from({ length: MAX_NAMES + 50 }, (_, i) => `m${i}`);
    const ds = names({ metrics: many });
    const lists = await loadNames(ds, 1000);
    expect(lists.metrics).toHaveLength(MAX_NAMES);
    await loadNames(ds, 1000 + NAMES_TTL_MS - 1);
    expect(ds.getMetrics).toHaveBeenCalledTimes(1);
    await loadNames(ds, 1000 + NAMES_TTL_MS);
    expect(ds.getMetrics).toHaveBeenCalledTimes(2);
  });

  it('keeps completing macros when a resource fails', async () => {
    const ds = names({ devices: ['pico'] });
    ds.getMetrics.mockRejectedValue(new Error('down'));
    const provider = completionProvider(fakeMonaco as unknown as Monaco, 'sql', 'm', () => loadNames(ds));
    const model = fakeModel('m', '$__');
    const result: any = await provider.provideCompletionItems(model as any, model.end as any, {} as any, {} as any);
    expect(result.suggestions.some((s: { label: string }) => s.label === '$__timeGroup')).toBe(true);
    expect(result.suggestions.some((s: { label: string }) => s.label === 'pico')).toBe(true);
  });
});
