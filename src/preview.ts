import { Aggregation, FieldlineQuery } from './types';

/**
 * Readable previews of what the backend runs for a builder query. Display only: the backend builds
 * the real statement and binds every user value as a parameter (no string splicing), which is why the
 * SQL preview shows $1, $2 … followed by the values they take.
 */

const SQL_AGG: Record<Aggregation, string> = {
  none: 'value',
  avg: 'avg(value)',
  min: 'min(value)',
  max: 'max(value)',
  last: 'last(value, time)',
  count: 'count(value)',
  sum: 'sum(value)',
};

/**
 * The aggregates "switch to code" writes: they run on plain PostgreSQL and on TimescaleDB alike (last() is
 * TimescaleDB's own). A Go test (pkg/plugin, TestSwitchToCodeSQL) runs each of them and compares with the builder.
 */
const CODE_AGG: Record<Aggregation, string> = {
  none: 'value',
  avg: 'avg(value)',
  min: 'min(value)',
  max: 'max(value)',
  last: '(array_agg(value ORDER BY time DESC))[1]',
  count: 'count(value)',
  sum: 'sum(value)',
};

const FLUX_AGG: Record<Aggregation, string> = {
  none: '',
  avg: 'mean',
  min: 'min',
  max: 'max',
  last: 'last',
  count: 'count',
  sum: 'sum',
};

/** The query's aggregation: '' (provisioning, older queries) means none; missing means the default, avg. */
export function aggregationOf(q: Partial<FieldlineQuery>): Aggregation {
  if (q.aggregation === undefined) {
    return 'avg';
  }
  return (q.aggregation as string) === '' ? 'none' : q.aggregation;
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

function sqlLiteral(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

function fluxString(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function buildSqlPreview(q: Partial<FieldlineQuery>): string {
  const bucket = q.interval && q.interval.trim() !== '' ? q.interval.trim() : '$__interval';
  const raw = aggregationOf(q) === 'none';
  const agg = SQL_AGG[aggregationOf(q)];
  const params: string[] = [];
  const where: string[] = [];

  params.push(sqlLiteral(q.metric || '<metric>'));
  where.push(`metric = $${params.length}`);

  const devices = splitList(q.device);
  if (devices.length === 1) {
    params.push(sqlLiteral(devices[0]));
    where.push(`device = $${params.length}`);
  } else if (devices.length > 1) {
    params.push(`{${devices.join(',')}}`);
    where.push(`device = ANY($${params.length})`);
  }

  const sensors = splitList(q.sensor);
  if (sensors.length === 1) {
    params.push(sqlLiteral(sensors[0]));
    where.push(`sensor = $${params.length}`);
  } else if (sensors.length > 1) {
    params.push(`{${sensors.join(',')}}`);
    where.push(`sensor = ANY($${params.length})`);
  }
  where.push('$__timeFilter(time)');

  const lines = raw
    ? ['SELECT time, device, sensor, value', 'FROM readings', `WHERE ${where.join('\n  AND ')}`, 'ORDER BY time']
    : [
        `SELECT time_bucket('${bucket}', time) AS time, device, sensor, ${agg} AS value`,
        'FROM readings',
        `WHERE ${where.join('\n  AND ')}`,
        'GROUP BY 1, 2, 3',
        'ORDER BY 1',
      ];
  lines.push(`-- ${params.map((p, i) => `$${i + 1} = ${p}`).join(', ')}`);
  if (q.live && liveStreams(q)) {
    lines.push(
      raw
        ? '-- then live: new rows for the same selector, pushed over Grafana Live'
        : '-- then live: each bucket once it has closed, pushed over Grafana Live'
    );
  }
  return lines.join('\n');
}

export function buildFluxPreview(q: Partial<FieldlineQuery>): string {
  const every = q.interval && q.interval.trim() !== '' ? q.interval.trim() : 'v.windowPeriod';
  const fn = FLUX_AGG[aggregationOf(q)];
  const lines = [
    'from(bucket: v.bucket)',
    '  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)',
    `  |> filter(fn: (r) => r._measurement == ${fluxString(q.metric || '<metric>')} and r._field == "value")`,
  ];
  const devices = splitList(q.device);
  if (devices.length > 0) {
    lines.push(`  |> filter(fn: (r) => ${devices.map((d) => `r.device == ${fluxString(d)}`).join(' or ')})`);
  }
  const sensors = splitList(q.sensor);
  if (sensors.length > 0) {
    lines.push(`  |> filter(fn: (r) => ${sensors.map((s) => `r.sensor == ${fluxString(s)}`).join(' or ')})`);
  }
  if (fn !== '') {
    lines.push(`  |> aggregateWindow(every: ${every}, fn: ${fn}, createEmpty: false)`);
  }
  return lines.join('\n');
}

/** The preview for the query's source, or '' when the source has no builder (MQTT). */
export function buildPreview(q: Partial<FieldlineQuery>): string {
  switch (q.source) {
    case 'flux':
      return buildFluxPreview(q);
    case 'mqtt':
      return '';
    default:
      return buildSqlPreview(q);
  }
}

/**
 * Seeds code SQL from a builder query when the user switches to code mode. This is the user's own text
 * from then on, so values are inlined as quoted literals and Grafana's macros stand in for the range.
 */
export function builderToRawSql(q: Partial<FieldlineQuery>): string {
  const bucket = q.interval && q.interval.trim() !== '' ? q.interval.trim() : '$__interval';
  const agg = CODE_AGG[aggregationOf(q)];
  const where = [`metric = ${sqlLiteral(q.metric || '')}`];
  const devices = splitList(q.device);
  if (devices.length > 0) {
    where.push(`device IN (${devices.map(sqlLiteral).join(', ')})`);
  }
  const sensors = splitList(q.sensor);
  if (sensors.length > 0) {
    where.push(`sensor IN (${sensors.map(sqlLiteral).join(', ')})`);
  }
  where.push('$__timeFilter(time)');
  if (aggregationOf(q) === 'none') {
    return [
      'SELECT time, device, sensor, value',
      'FROM readings',
      `WHERE ${where.join(' AND ')}`,
      'ORDER BY time',
    ].join('\n');
  }
  return [
    `SELECT $__timeGroupAlias(time, ${bucket}), device, sensor, ${agg} AS value`,
    'FROM readings',
    `WHERE ${where.join(' AND ')}`,
    'GROUP BY 1, 2, 3',
    'ORDER BY 1',
  ].join('\n');
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
