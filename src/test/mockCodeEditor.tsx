/*
 * @grafana/ui's CodeEditor renders Monaco, which does not run in jsdom. Tests replace it, the way Grafana's own
 * plugins do:
 *
 *   jest.mock('@grafana/ui', () => ({
 *     ...jest.requireActual('@grafana/ui'),
 *     CodeEditor: jest.requireActual('../test/mockCodeEditor').MockCodeEditor,
 *   }));
 *
 * The stand-in is a textarea (aria-label from monacoOptions.ariaLabel) that calls onChange and onBlur, and on
 * mount hands a fake editor and a fake Monaco to onBeforeEditorMount / onEditorDidMount. The fake Monaco
 * records every completion provider registered and whether it was disposed (fakeMonaco.providers).
 */
import React, { useEffect, useRef } from 'react';

import type { Monaco, MonacoEditor } from '@grafana/ui';

export interface RegisteredProvider {
  language: string;
  provider: any;
  disposed: boolean;
}

let nextModel = 1;

export const fakeMonaco = {
  providers: [] as RegisteredProvider[],
  languages: {
    registered: [] as string[],
    CompletionItemKind: { Function: 1, Constant: 14, Value: 13, Field: 3 },
    CompletionItemInsertTextRule: { InsertAsSnippet: 4 },
    registerCompletionItemProvider(language: string, provider: any) {
      const entry: RegisteredProvider = { language, provider, disposed: false };
      fakeMonaco.providers.push(entry);
      return { dispose: () => (entry.disposed = true) };
    },
    getLanguages: () => fakeMonaco.languages.registered.map((id) => ({ id })),
    register: ({ id }: { id: string }) => fakeMonaco.languages.registered.push(id),
    setLanguageConfiguration: () => ({ dispose: () => {} }),
    setMonarchTokensProvider: () => ({ dispose: () => {} }),
  },
  reset() {
    fakeMonaco.providers = [];
    fakeMonaco.languages.registered = [];
  },
};

/** A fake Monaco text model over `text`, for calling a provider's provideCompletionItems. */
export function fakeModel(id: string, text: string) {
  const lines = text.split('\n');
  return {
    id,
    getValueInRange: (r: { endLineNumber: number; endColumn: number }) =>
      [...lines.slice(0, r.endLineNumber - 1), lines[r.endLineNumber - 1].slice(0, r.endColumn - 1)].join('\n'),
    end: { lineNumber: lines.length, column: lines[lines.length - 1].length + 1 },
  };
}

interface MockProps {
  value?: string;
  language?: string;
  monacoOptions?: { ariaLabel?: string };
  onChange?: (v: string) => void;
  onBlur?: (v: string) => void;
  onBeforeEditorMount?: (m: Monaco) => void;
  onEditorDidMount?: (e: MonacoEditor, m: Monaco) => void;
}

export function MockCodeEditor(props: MockProps) {
  const model = useRef({ id: `model-${nextModel++}` });
  const { onBeforeEditorMount, onEditorDidMount } = props;
  useEffect(() => {
    const monaco = fakeMonaco as unknown as Monaco;
    onBeforeEditorMount?.(monaco);
    onEditorDidMount?.({ getModel: () => model.current } as unknown as MonacoEditor, monaco);
    // mount only, like Monaco
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <textarea
      data-testid="mock-code-editor"
      data-language={props.language}
      data-model={model.current.id}
      aria-label={props.monacoOptions?.ariaLabel}
      value={props.value ?? ''}
      onChange={(e) => props.onChange?.(e.currentTarget.value)}
      onBlur={(e) => props.onBlur?.(e.currentTarget.value)}
    />
  );
}
