import {
  AnnotationQuery,
  CoreApp,
  TimeRange,
  CustomVariableSupport,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceInstanceSettings,
  ScopedVars,
} from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv, TemplateSrv } from '@grafana/runtime';
import { Observable } from 'rxjs';

import { fromOf, sourceFor, VariableQueryEditor } from './components/VariableQueryEditor';
import { splitList } from './preview';
import { DEFAULT_QUERY, FieldlineOptions, FieldlineQuery, QueryMode, QuerySource } from './types';

/** A picker option; `isVariable` marks dashboard template variables. */
export interface NameOption {
  label: string;
  value: string;
  isVariable?: boolean;
}

/**
 * Multi-value format for device and sensor (and metric): the backend receives a comma separated list
 * (`pico,node1`) and splits it on ','. Device names therefore must not contain ','.
 * A literal `{a,b}` typed by the user, or Grafana's default glob format, is turned into `a,b` as well.
 */
export function formatList(value: string | string[]): string {
  if (Array.isArray(value)) {
    return value.join(',');
  }
  return value;
}

/** Normalises an interpolated selector: `{a,b}` → `a,b`, trims blanks around items. */
export function normalizeList(value?: string): string | undefined {
  if (value === undefined) {
    return undefined;
  }
  return splitList(value).join(',');
}

/** Multi-value format inside code SQL: a quoted SQL list, as Grafana's PostgreSQL data source does. */
export function formatSqlValue(value: string | string[], variable?: { multi?: boolean; includeAll?: boolean }) {
  const quote = (v: string) => `'${String(v).replace(/'/g, "''")}'`;
  if (Array.isArray(value)) {
    return value.map(quote).join(',');
  }
  if (variable && (variable.multi || variable.includeAll)) {
    return quote(value);
  }
  return value;
}

/** A picker's resource parameters: the mode only when it changes the list (states). */
function pickerFilter<F extends { mode?: QueryMode }>(filter: F): Omit<F, 'mode'> & { mode?: 'states' } {
  const { mode, ...rest } = filter;
  return mode === 'states' ? { ...rest, mode } : rest;
}

/** What the backend runs for a query: the /preview resource's answer. */
export interface QueryPreview {
  language: 'sql' | 'flux';
  /** The statement exactly as it runs (code queries: macros and v.* variables expanded). */
  text: string;
  /** Builder SQL: the values bound to $1, $2 … */
  params?: string[];
  /** Builder queries: what "switch to code" seeds, with macros or v.* variables for the range. */
  code?: string;
  notes?: string[];
}

/** The message of a failed resource call (Grafana's backendSrv puts the body in data). */
export function resourceError(err: unknown): string {
  const e = err as { data?: { error?: string; message?: string }; message?: string; statusText?: string };
  return e?.data?.error ?? e?.data?.message ?? e?.message ?? e?.statusText ?? String(err);
}

export class DataSource extends DataSourceWithBackend<FieldlineQuery, FieldlineOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<FieldlineOptions>) {
    super(instanceSettings);
    this.variables = new FieldlineVariableSupport(this);
    this.annotations = {
      // Annotation queries run through QueryData like any other query, as a table (never live): Grafana reads
      // the time, timeEnd, text, title and tags columns (docs/plugin.md, "Annotations").
      prepareQuery: (anno: AnnotationQuery<FieldlineQuery>) => {
        const target = anno.target;
        if (!target) {
          return undefined;
        }
        return { ...DEFAULT_QUERY, ...target, format: 'table', live: false } as FieldlineQuery;
      },
    };
  }

  getDefaultQuery(_app: CoreApp): Partial<FieldlineQuery> {
    return DEFAULT_QUERY;
  }

  private templateSrv(): TemplateSrv | undefined {
    try {
      return getTemplateSrv();
    } catch {
      return undefined;
    }
  }

  /**
   * Interpolates every string field of the query. Live queries need nothing more: the backend answers a
   * live query with a frame whose meta.channel names its Grafana Live channel, and DataSourceWithBackend's
   * query path subscribes to that channel through Grafana's runtime, so there is no polling here.
   */
  applyTemplateVariables(query: FieldlineQuery, scopedVars: ScopedVars): FieldlineQuery {
    const srv = this.templateSrv();
    if (!srv) {
      return query;
    }
    const plain = (v?: string) => (v === undefined ? v : srv.replace(v, scopedVars));
    const list = (v?: string) => (v === undefined ? v : normalizeList(srv.replace(v, scopedVars, formatList)));

    return {
      ...query,
      device: list(query.device),
      metric: list(query.metric),
      sensor: list(query.sensor),
      interval: plain(query.interval),
      rawSql: query.rawSql === undefined ? undefined : srv.replace(query.rawSql, scopedVars, formatSqlValue),
      flux: plain(query.flux),
      influxql: plain(query.influxql),
      topic: plain(query.topic),
      template: plain(query.template),
      state: plain(query.state),
    };
  }

  /** Drops queries that cannot run yet, so the backend never sees an empty one. */
  filterQuery(query: FieldlineQuery): boolean {
    if (query.hide) {
      return false;
    }
    if (query.variable) {
      return true;
    }
    const source = query.source ?? 'sql';
    if (source === 'mqtt') {
      return !!query.topic?.trim();
    }
    if (source === 'influxql') {
      return !!query.influxql?.trim();
    }
    if ((query.mode ?? 'builder') === 'code') {
      const text = source === 'flux' ? query.flux : query.rawSql;
      return !!text?.trim();
    }
    return !!query.metric?.trim();
  }

  /** Dashboard variables as picker options ($name). */
  getVariableOptions(): NameOption[] {
    const srv = this.templateSrv();
    if (!srv) {
      return [];
    }
    return srv.getVariables().map((v) => ({ label: `$${v.name}`, value: `$${v.name}`, isVariable: true }));
  }

  private async names(path: string, params: Record<string, string | undefined>): Promise<string[]> {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) {
      if (v) {
        // resource filters take the same interpolation as queries (multi-value → a,b)
        const srv = this.templateSrv();
        clean[k] = srv ? normalizeList(srv.replace(v, undefined, formatList)) ?? v : v;
      }
    }
    const result = await this.getResource<string[]>(path, clean);
    return Array.isArray(result) ? result : [];
  }

  /**
   * Picker lists; `source` names the database the query reads (sql: PostgreSQL, flux: InfluxDB), `mode` states
   * lists the series of the states table (text and on/off values) instead of the readings'.
   */
  getDevices(
    filter: { metric?: string; sensor?: string; source?: QuerySource; mode?: QueryMode } = {}
  ): Promise<string[]> {
    return this.names('devices', pickerFilter(filter));
  }

  getMetrics(
    filter: { device?: string; sensor?: string; source?: QuerySource; mode?: QueryMode } = {}
  ): Promise<string[]> {
    return this.names('metrics', pickerFilter(filter));
  }

  getSensors(
    filter: { device?: string; metric?: string; source?: QuerySource; mode?: QueryMode } = {}
  ): Promise<string[]> {
    return this.names('sensors', pickerFilter(filter));
  }

  /**
   * Asks the backend what the query runs for the panel's range: the same builders as QueryData, so the preview
   * is never a copy. Dashboard variables are interpolated first, as for a query.
   */
  preview(query: FieldlineQuery, range?: TimeRange): Promise<QueryPreview> {
    return this.postResource<QueryPreview>('preview', {
      query: this.applyTemplateVariables(query, {}),
      from: range?.from.valueOf(),
      to: range?.to.valueOf(),
    });
  }

  getTopics(): Promise<string[]> {
    return this.names('topics', {});
  }
}

/**
 * Query variables (devices, metrics, sensors): the variable query is a FieldlineQuery with `variable` set and the
 * source and mode of the database it lists from (PostgreSQL, InfluxDB, or the states table); the backend answers
 * it through QueryData with a frame
 * holding one string field, which Grafana turns into the variable's values.
 */
export class FieldlineVariableSupport extends CustomVariableSupport<DataSource, FieldlineQuery> {
  editor = VariableQueryEditor;

  constructor(private readonly datasource: DataSource) {
    super();
  }

  query(request: DataQueryRequest<FieldlineQuery>): Observable<DataQueryResponse> {
    const targets = request.targets.map((t) => ({
      ...t,
      ...sourceFor(fromOf(t)),
      variable: t.variable ?? 'devices',
    }));
    return this.datasource.query({ ...request, targets });
  }
}
