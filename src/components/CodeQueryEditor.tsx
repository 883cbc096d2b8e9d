import React, { useCallback, useEffect, useRef } from 'react';

import { CodeEditor, type Monaco, type MonacoEditor, type monacoTypes } from '@grafana/ui';

import { CompletionItem, CompletionKind, CompletionSource, completionItems, MAX_NAMES, NameLists } from '../completion';

/** What the editor needs from the data source: the names its resources serve. */
export interface NameSource {
  getMetrics(filter?: object): Promise<string[]>;
  getDevices(filter?: object): Promise<string[]>;
  getSensors(filter?: object): Promise<string[]>;
}

interface Props {
  source: CompletionSource;
  /** id of the element around the editor (e2e tests and the docs refer to it). */
  id: string;
  /** Accessible name of the editor's text input. */
  label: string;
  value: string;
  datasource: NameSource;
  /** Every edit, without running the query. */
  onChange: (value: string) => void;
  /** Leaving the editor: commit the value and run the query. */
  onBlur: (value: string) => void;
  height?: number;
}

/** How long fetched names are reused by the next editor that mounts. */
export const NAMES_TTL_MS = 30_000;

const EMPTY: NameLists = { metrics: [], devices: [], sensors: [] };
const namesCache = new WeakMap<NameSource, { at: number; lists: Promise<NameLists> }>();

/** The names for completion, fetched once per TTL and data source, each list bounded to MAX_NAMES. */
export function loadNames(ds: NameSource, now = Date.now()): Promise<NameLists> {
  const hit = namesCache.get(ds);
  if (hit && now - hit.at < NAMES_TTL_MS) {
    return hit.lists;
  }
  // a failing resource leaves its list empty: completion still offers the macros and the other names
  const get = (load: () => Promise<string[]>) =>
    load().then(
      (names) => (Array.isArray(names) ? names.slice(0, MAX_NAMES) : []),
      () => []
    );
  const lists = Promise.all([
    get(() => ds.getMetrics({})),
    get(() => ds.getDevices({})),
    get(() => ds.getSensors({})),
  ]).then(([metrics, devices, sensors]) => ({ metrics, devices, sensors }));
  namesCache.set(ds, { at: now, lists });
  return lists;
}

export const FLUX_LANGUAGE = 'flux';

/** A minimal Flux tokenizer (keywords, strings, durations, |>, comments), registered once per Monaco. */
export function registerFlux(monaco: Monaco) {
  if (monaco.languages.getLanguages().some((l) => l.id === FLUX_LANGUAGE)) {
    return;
  }
  monaco.languages.register({ id: FLUX_LANGUAGE });
  monaco.languages.setLanguageConfiguration(FLUX_LANGUAGE, {
    comments: { lineComment: '//' },
    brackets: [
      ['{', '}'],
      ['[', ']'],
      ['(', ')'],
    ],
    autoClosingPairs: [
      { open: '{', close: '}' },
      { open: '[', close: ']' },
      { open: '(', close: ')' },
      { open: '"', close: '"', notIn: ['string'] },
    ],
  });
  monaco.languages.setMonarchTokensProvider(FLUX_LANGUAGE, {
    keywords: ['import', 'package', 'option', 'return', 'and', 'or', 'not', 'exists', 'if', 'then', 'else'],
    functions: [
      'from',
      'range',
      'filter',
      'aggregateWindow',
      'window',
      'group',
      'keep',
      'drop',
      'map',
      'yield',
      'mean',
      'min',
      'max',
      'last',
      'count',
      'sum',
      'fill',
      'sort',
      'limit',
      'pivot',
    ],
    tokenizer: {
      root: [
        [/\/\/.*$/, 'comment'],
        [/"/, 'string', '@string'],
        [/\|>/, 'operator'],
        [/\d+(ns|us|µs|ms|s|m|h|d|w|mo|y)\b/, 'number'],
        [/\d+(\.\d+)?/, 'number'],
        [
          /[a-zA-Z_]\w*/,
          { cases: { '@keywords': 'keyword', '@functions': 'type.identifier', '@default': 'identifier' } },
        ],
        [/[=<>!]=?|=~|!~|[+\-*/%]/, 'operator'],
      ],
      string: [
        [/[^\\"]+/, 'string'],
        [/\\./, 'string.escape'],
        [/"/, 'string', '@pop'],
      ],
    },
  });
}

function monacoKind(monaco: Monaco, kind: CompletionKind): monacoTypes.languages.CompletionItemKind {
  const k = monaco.languages.CompletionItemKind;
  switch (kind) {
    case 'macro':
      return k.Function;
    case 'metric':
      return k.Constant;
    case 'device':
      return k.Value;
    case 'sensor':
      return k.Field;
  }
}

/** The completion provider of one editor: it answers only for that editor's model. */
export function completionProvider(
  monaco: Monaco,
  source: CompletionSource,
  modelId: string,
  names: () => Promise<NameLists>
): monacoTypes.languages.CompletionItemProvider {
  return {
    triggerCharacters: source === 'flux' ? ['.', '"'] : ['$', "'"],
    provideCompletionItems: async (model, position) => {
      if (model.id !== modelId) {
        return undefined;
      }
      const text = model.getValueInRange({
        startLineNumber: 1,
        startColumn: 1,
        endLineNumber: position.lineNumber,
        endColumn: position.column,
      });
      const lists = await names();
      const toSuggestion = (item: CompletionItem): monacoTypes.languages.CompletionItem => ({
        label: item.label,
        kind: monacoKind(monaco, item.kind),
        detail: item.detail,
        documentation: item.documentation,
        insertText: item.insertText,
        insertTextRules: item.snippet ? monaco.languages.CompletionItemInsertTextRule.InsertAsSnippet : undefined,
        sortText: item.sortText,
        range: {
          startLineNumber: position.lineNumber,
          endLineNumber: position.lineNumber,
          startColumn: Math.max(1, position.column - item.replace),
          endColumn: position.column,
        },
      });
      return { suggestions: completionItems(source, text, lists).map(toSuggestion) };
    },
  };
}

/**
 * Monaco (@grafana/ui's CodeEditor) for code SQL and code Flux, with completion of the macros and of the
 * metric, device and sensor names the data source serves. The completion provider is registered when the
 * editor mounts and disposed when it unmounts.
 */
export function CodeQueryEditor({ source, id, label, value, datasource, onChange, onBlur, height = 200 }: Props) {
  const provider = useRef<monacoTypes.IDisposable | undefined>(undefined);
  const names = useRef<Promise<NameLists>>(Promise.resolve(EMPTY));
  // CodeEditor subscribes its onChange once, when Monaco mounts: route it through a ref to the latest props
  const latest = useRef({ onChange, onBlur });
  latest.current = { onChange, onBlur };

  useEffect(
    () => () => {
      provider.current?.dispose();
      provider.current = undefined;
    },
    []
  );

  const onBeforeEditorMount = useCallback(
    (monaco: Monaco) => {
      if (source === 'flux') {
        registerFlux(monaco);
      }
    },
    [source]
  );

  const onEditorDidMount = useCallback(
    (editor: MonacoEditor, monaco: Monaco) => {
      const model = editor.getModel();
      if (!model) {
        return;
      }
      names.current = loadNames(datasource);
      provider.current?.dispose();
      provider.current = monaco.languages.registerCompletionItemProvider(
        source === 'flux' ? FLUX_LANGUAGE : 'sql',
        completionProvider(monaco, source, model.id, () => names.current)
      );
    },
    [datasource, source]
  );

  const onEditorChange = useCallback((v: string) => latest.current.onChange(v), []);
  const onEditorBlur = useCallback((v: string) => latest.current.onBlur(v), []);

  return (
    <div id={id} data-testid={id}>
      <CodeEditor
        language={source === 'flux' ? FLUX_LANGUAGE : 'sql'}
        value={value}
        height={height}
        showLineNumbers
        showMiniMap={false}
        monacoOptions={{ ariaLabel: label, scrollBeyondLastLine: false, wordBasedSuggestions: false }}
        onBeforeEditorMount={onBeforeEditorMount}
        onEditorDidMount={onEditorDidMount}
        onChange={onEditorChange}
        onBlur={onEditorBlur}
      />
    </div>
  );
}
