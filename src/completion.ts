/**
 * Completion for the code editors (code SQL and code Flux): the macros each language knows and the metric,
 * device and sensor names the data source's resources serve. Pure functions only; the Monaco glue lives in
 * components/CodeQueryEditor.tsx.
 *
 * SQL_MACROS and FLUX_VARIABLES are the one list per language. pkg/plugin's TestEditorMacrosMatchBackend reads
 * the `name: '…'` entries below and fails when they differ from the backend's (sqlquery.MacroNames,
 * fluxquery.Variables): keep each entry's name on one line in that form.
 */

export type CompletionSource = 'sql' | 'flux' | 'influxql';

/** What a suggestion is: a macro (SQL $__… or Flux v.…) or a name from a resource. */
export type CompletionKind = 'macro' | 'metric' | 'device' | 'sensor';

export interface Macro {
  /** As typed in a query: `$__timeFilter`, `v.timeRangeStart`. */
  name: string;
  /** How it is called, for the reference table. */
  signature: string;
  /** Monaco snippet syntax: `${1:time}` placeholders, `\$` for a literal dollar. */
  insertText: string;
  documentation: string;
}

export const SQL_MACROS: Macro[] = [
  {
    name: '$__timeFilter',
    signature: '$__timeFilter(time)',
    insertText: '\\$__timeFilter(${1:time})',
    documentation: "time >= the dashboard's from and < its to",
  },
  {
    name: '$__timeGroup',
    signature: '$__timeGroup(time, $__interval)',
    insertText: '\\$__timeGroup(${1:time}, ${2:\\$__interval})',
    documentation:
      'bucket start for each interval (time_bucket / date_bin); an optional third argument fills gaps: NULL, previous or a number',
  },
  {
    name: '$__timeGroupAlias',
    signature: '$__timeGroupAlias(time, $__interval)',
    insertText: '\\$__timeGroupAlias(${1:time}, ${2:\\$__interval})',
    documentation: 'the same, aliased AS "time"',
  },
  {
    name: '$__interval',
    signature: '$__interval',
    insertText: '\\$__interval',
    documentation: 'the panel interval, e.g. 1m',
  },
  {
    name: '$__interval_ms',
    signature: '$__interval_ms',
    insertText: '\\$__interval_ms',
    documentation: 'the panel interval in milliseconds',
  },
  {
    name: '$__time',
    signature: '$__time(time)',
    insertText: '\\$__time(${1:time})',
    documentation: 'the column AS "time"',
  },
  {
    name: '$__timeEpoch',
    signature: '$__timeEpoch(time)',
    insertText: '\\$__timeEpoch(${1:time})',
    documentation: 'extract(epoch from the column) AS "time"',
  },
  {
    name: '$__timeFrom',
    signature: '$__timeFrom()',
    insertText: '\\$__timeFrom()',
    documentation: "the dashboard's from, as an RFC 3339 literal",
  },
  {
    name: '$__timeTo',
    signature: '$__timeTo()',
    insertText: '\\$__timeTo()',
    documentation: "the dashboard's to, as an RFC 3339 literal",
  },
  {
    name: '$__unixEpochFilter',
    signature: '$__unixEpochFilter(column)',
    insertText: '\\$__unixEpochFilter(${1:column})',
    documentation: 'the range as unix epoch seconds, for integer time columns',
  },
  {
    name: '$__unixEpochFrom',
    signature: '$__unixEpochFrom()',
    insertText: '\\$__unixEpochFrom()',
    documentation: "the dashboard's from in unix epoch seconds",
  },
  {
    name: '$__unixEpochTo',
    signature: '$__unixEpochTo()',
    insertText: '\\$__unixEpochTo()',
    documentation: "the dashboard's to in unix epoch seconds",
  },
  {
    name: '$__unixEpochGroup',
    signature: '$__unixEpochGroup(column, $__interval)',
    insertText: '\\$__unixEpochGroup(${1:column}, ${2:\\$__interval})',
    documentation: 'bucket start in unix epoch seconds, for integer time columns',
  },
  {
    name: '$__unixEpochGroupAlias',
    signature: '$__unixEpochGroupAlias(column, $__interval)',
    insertText: '\\$__unixEpochGroupAlias(${1:column}, ${2:\\$__interval})',
    documentation: 'the same, aliased AS "time"',
  },
];

export const FLUX_VARIABLES: Macro[] = [
  {
    name: 'v.timeRangeStart',
    signature: 'v.timeRangeStart',
    insertText: 'v.timeRangeStart',
    documentation: "the dashboard's from (time)",
  },
  {
    name: 'v.timeRangeStop',
    signature: 'v.timeRangeStop',
    insertText: 'v.timeRangeStop',
    documentation: "the dashboard's to (time)",
  },
  {
    name: 'v.windowPeriod',
    signature: 'v.windowPeriod',
    insertText: 'v.windowPeriod',
    documentation: 'the panel interval (duration)',
  },
  {
    name: 'v.bucket',
    signature: 'v.bucket',
    insertText: 'v.bucket',
    documentation: 'the configured bucket (string)',
  },
  {
    name: 'v.defaultBucket',
    signature: 'v.defaultBucket',
    insertText: 'v.defaultBucket',
    documentation: 'the configured bucket (string), as Grafana names it',
  },
  {
    name: 'v.organization',
    signature: 'v.organization',
    insertText: 'v.organization',
    documentation: 'the configured organization (string)',
  },
  {
    name: 'v.intervalMs',
    signature: 'v.intervalMs',
    insertText: 'v.intervalMs',
    documentation: 'the panel interval in milliseconds (integer)',
  },
  {
    name: 'v.maxDataPoints',
    signature: 'v.maxDataPoints',
    insertText: 'v.maxDataPoints',
    documentation: "the panel's maximum number of points (integer)",
  },
];

export const INFLUXQL_MACROS: Macro[] = [
  {
    name: '$timeFilter',
    signature: '$timeFilter',
    insertText: '\\$timeFilter',
    documentation: "time >= the dashboard's from and <= its to",
  },
  {
    name: '$__timeFilter',
    signature: '$__timeFilter',
    insertText: '\\$__timeFilter',
    documentation: 'the same as $timeFilter',
  },
  {
    name: '$__interval',
    signature: 'time($__interval)',
    insertText: '\\$__interval',
    documentation: 'the panel interval, e.g. 10s',
  },
  {
    name: '$interval',
    signature: 'time($interval)',
    insertText: '\\$interval',
    documentation: 'the same as $__interval',
  },
  {
    name: '$__interval_ms',
    signature: '$__interval_ms',
    insertText: '\\$__interval_ms',
    documentation: 'the panel interval in milliseconds',
  },
  {
    name: '$__timeFrom',
    signature: '$__timeFrom',
    insertText: '\\$__timeFrom',
    documentation: "the dashboard's from, epoch milliseconds (ms)",
  },
  {
    name: '$__timeTo',
    signature: '$__timeTo',
    insertText: '\\$__timeTo',
    documentation: "the dashboard's to, epoch milliseconds (ms)",
  },
];

/** The macro list of a query language. */
export function macrosFor(source: CompletionSource): Macro[] {
  switch (source) {
    case 'flux':
      return FLUX_VARIABLES;
    case 'influxql':
      return INFLUXQL_MACROS;
  }
  return SQL_MACROS;
}

/** Resource names offered by completion (each list bounded by the caller, see MAX_NAMES). */
export interface NameLists {
  metrics: string[];
  devices: string[];
  sensors: string[];
}

/** The most names of one kind the editor fetches and offers. */
export const MAX_NAMES = 1000;

export interface CompletionItem {
  label: string;
  kind: CompletionKind;
  /** Text to insert; a snippet when `snippet` is set. */
  insertText: string;
  snippet: boolean;
  /** Shown next to the label: "macro", "metric", … */
  detail: string;
  documentation?: string;
  /** Macros sort before names. */
  sortText: string;
  /** How many characters before the cursor the item replaces (the typed prefix, on the cursor's line). */
  replace: number;
}

const NAME_KINDS: Array<{ kind: Exclude<CompletionKind, 'macro'>; list: keyof NameLists }> = [
  { kind: 'metric', list: 'metrics' },
  { kind: 'device', list: 'devices' },
  { kind: 'sensor', list: 'sensors' },
];

// SQL: the text before an opening quote that makes the string a metric, device or sensor name:
// `metric = '`, `device <> '`, `sensor IN ('a', '`.
const SQL_NAME_CONTEXT = /\b(metric|device|sensor)\s*(?:=|!=|<>|\bin\s*\(\s*(?:'(?:[^'\n]|'')*'\s*,\s*)*)\s*$/i;

// Flux: `r._measurement == "`, `r.device != "`, `r["sensor"] == "` (the builder's layout: measurement = metric).
const FLUX_NAME_CONTEXT =
  /\br\s*(?:\.\s*(_measurement|device|sensor)|\[\s*"(_measurement|device|sensor)"\s*\])\s*(?:==|!=)\s*$/;

/** Where an unterminated string starts in `text` (the index of its opening quote), or -1. */
function openString(text: string, quote: "'" | '"'): number {
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (start < 0) {
      if (c === quote) {
        start = i;
      } else if (quote === "'" && c === '-' && text[i + 1] === '-') {
        // SQL line comment: skip to the end of the line
        const nl = text.indexOf('\n', i);
        i = nl < 0 ? text.length : nl;
      } else if (quote === '"' && c === '/' && text[i + 1] === '/') {
        const nl = text.indexOf('\n', i);
        i = nl < 0 ? text.length : nl;
      }
      continue;
    }
    if (quote === '"' && c === '\\') {
      i++; // Flux escape
    } else if (c === quote) {
      if (quote === "'" && text[i + 1] === "'") {
        i++; // SQL '' escape
      } else {
        start = -1;
      }
    }
  }
  return start;
}

const sqlLiteral = (s: string) => s.replace(/'/g, "''");
const fluxLiteral = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$\{/g, '\\${');

/**
 * The completion items at the cursor of a code query: `textBeforeCursor` is the query text from its start to
 * the cursor.
 *
 * - Inside a string that compares a metric, device or sensor (SQL `metric = '…`, Flux `r._measurement == "…`):
 *   the names of that kind.
 * - Inside any other string: all names, labelled by kind.
 * - Elsewhere: the language's macros (snippets), then all names as quoted literals, labelled by kind.
 */
export function completionItems(
  source: CompletionSource,
  textBeforeCursor: string,
  lists: NameLists
): CompletionItem[] {
  const quote = source === 'flux' ? '"' : "'";
  const literal = source === 'flux' ? fluxLiteral : sqlLiteral;
  const names = (kinds: typeof NAME_KINDS, inString: boolean, replace: number): CompletionItem[] =>
    kinds.flatMap(({ kind, list }) =>
      lists[list].map((name) => ({
        label: name,
        kind,
        insertText: inString ? literal(name) : quote + literal(name) + quote,
        snippet: false,
        detail: kind,
        sortText: `1${kind}`,
        replace,
      }))
    );

  const start = openString(textBeforeCursor, quote);
  if (start >= 0) {
    const prefix = textBeforeCursor.slice(start + 1);
    if (prefix.includes('\n')) {
      return []; // a string across lines: no name has a newline
    }
    const before = textBeforeCursor.slice(0, start);
    const m = source === 'flux' ? FLUX_NAME_CONTEXT.exec(before) : SQL_NAME_CONTEXT.exec(before);
    let kinds = NAME_KINDS;
    if (m) {
      const tag = (m[1] ?? m[2]).toLowerCase();
      const kind = tag === '_measurement' ? 'metric' : tag;
      kinds = NAME_KINDS.filter((k) => k.kind === kind);
    }
    return names(kinds, true, prefix.length);
  }

  const prefix = (source === 'flux' ? /[\w.]*$/ : /[$\w]*$/).exec(textBeforeCursor)?.[0] ?? '';
  const macros: CompletionItem[] = macrosFor(source).map((m, i) => ({
    label: m.name,
    kind: 'macro',
    insertText: m.insertText,
    snippet: true,
    detail: m.signature,
    documentation: m.documentation,
    sortText: `0${String(i).padStart(3, '0')}`,
    replace: prefix.length,
  }));
  return [...macros, ...names(NAME_KINDS, false, prefix.length)];
}
