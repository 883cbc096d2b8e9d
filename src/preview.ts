import { QUERY_DEFAULTS } from './contract.gen';
import { Aggregation, FieldlineQuery } from './types';

/**
 * Small helpers of the query editor. The preview of what a query runs, and the code "switch to code" seeds, are
 * not built here: the editor asks the backend's /preview resource, which calls the builders QueryData runs
 * (see DataSource.preview), so the two cannot drift.
 */

/**
 * The query's aggregation: absent means the backend's default (QUERY_DEFAULTS: none, raw rows); '' (provisioning,
 * older queries) means none too.
 */
export function aggregationOf(q: Partial<FieldlineQuery>): Aggregation {
  if (q.aggregation === undefined || (q.aggregation as string) === '') {
    return QUERY_DEFAULTS.aggregation;
  }
  return q.aggregation;
}

/**
 * Whether a live query of this shape streams: builder SQL as a time series (raw readings as they arrive, an
 * aggregation as each bucket closes) and MQTT. Flux, code SQL and the table format show their history only.
 */
export function liveStreams(q: Partial<FieldlineQuery>): boolean {
  if (q.source === 'mqtt') {
    return true;
  }
  return q.source !== 'flux' && q.mode !== 'code' && q.format !== 'table';
}

/** Splits a device/sensor selector the way the backend does: on ',' (also accepts `{a,b}`). */
export function splitList(value?: string): string[] {
  if (!value) {
    return [];
  }
  let v = value.trim();
  if (v.startsWith('{') && v.endsWith('}')) {
    v = v.slice(1, -1);
  }
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** An MQTT topic filter from a builder selector and the topic template ({device}/{metric}/{sensor}). */
export function topicFromSelector(q: Partial<FieldlineQuery>): string {
  const template = q.template || '{device}/{metric}/{sensor}';
  const one = (v?: string) => {
    const items = splitList(v);
    return items.length === 1 ? items[0] : '+';
  };
  return template
    .replace('{device}', one(q.device))
    .replace('{metric}', one(q.metric))
    .replace('{sensor}', one(q.sensor));
}
