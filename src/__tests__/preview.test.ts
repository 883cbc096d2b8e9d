import {
  aggregationOf,
  buildFluxPreview,
  buildPreview,
  buildSqlPreview,
  builderToRawSql,
  liveStreams,
  splitList,
  topicFromSelector,
} from '../preview';

describe('buildSqlPreview', () => {
  it('has the shape of the builder query with parameters', () => {
    const sql = buildSqlPreview({
      source: 'sql',
      metric: 'temperature',
      device: 'pico',
      aggregation: 'avg',
      interval: '1m',
    });
    expect(sql).toContain("SELECT time_bucket('1m', time) AS time, device, sensor, avg(value)");
    expect(sql).toContain('FROM readings');
    expect(sql).toContain('WHERE metric = $1');
    expect(sql).toContain('AND device = $2');
    expect(sql).toContain("$1 = 'temperature', $2 = 'pico'");
  });

  it('uses ANY for lists and $__interval by default', () => {
    const sql = buildSqlPreview({ metric: 'rssi', device: 'a,b', sensor: '{x,y}', aggregation: 'max' });
    expect(sql).toContain("time_bucket('$__interval', time)");
    expect(sql).toContain('max(value)');
    expect(sql).toContain('device = ANY($2)');
    expect(sql).toContain('sensor = ANY($3)');
  });

  it('mentions the live tail: rows for raw queries, closed buckets for aggregated ones', () => {
    expect(buildSqlPreview({ metric: 'x', live: true, aggregation: 'none' })).toContain('new rows');
    expect(buildSqlPreview({ metric: 'x', live: true })).toContain('each bucket once it has closed');
    expect(buildSqlPreview({ metric: 'x', live: true, format: 'table' })).not.toContain('then live');
  });
});

describe('buildFluxPreview', () => {
  it('uses Flux time range variables and the aggregation', () => {
    const flux = buildFluxPreview({ metric: 'temperature', device: 'pico,node1', aggregation: 'avg' });
    expect(flux).toContain('from(bucket: v.bucket)');
    expect(flux).toContain('range(start: v.timeRangeStart, stop: v.timeRangeStop)');
    expect(flux).toContain('r.device == "pico" or r.device == "node1"');
    expect(flux).toContain('aggregateWindow(every: v.windowPeriod, fn: mean');
  });
  it('escapes quotes', () => {
    expect(buildFluxPreview({ metric: 'a"b' })).toContain('"a\\"b"');
  });
});

describe('helpers', () => {
  it('buildPreview picks by source', () => {
    expect(buildPreview({ source: 'mqtt' })).toBe('');
    expect(buildPreview({ source: 'flux', metric: 'x' })).toContain('from(');
    expect(buildPreview({ source: 'sql', metric: 'x' })).toContain('SELECT');
  });
  it('builderToRawSql inlines quoted values and macros', () => {
    const sql = builderToRawSql({ metric: "o'k", device: 'a,b', aggregation: 'last' });
    expect(sql).toContain("metric = 'o''k'");
    expect(sql).toContain("device IN ('a', 'b')");
    expect(sql).toContain('$__timeGroupAlias(time, $__interval)');
    expect(sql).toContain('(array_agg(value ORDER BY time DESC))[1] AS value'); // runs on plain PostgreSQL too
    expect(sql).not.toContain('last(value, time)');
  });
  it('topicFromSelector fills the template', () => {
    expect(topicFromSelector({ device: 'pico', metric: 'temperature' })).toBe('pico/temperature/+');
    expect(topicFromSelector({ metric: 'rssi', template: 'iiot/{device}/{metric}' })).toBe('iiot/+/rssi');
  });
  it('splitList', () => {
    expect(splitList(' {a, b} ')).toEqual(['a', 'b']);
    expect(splitList(undefined)).toEqual([]);
  });
});

describe('raw (none) aggregation and live', () => {
  it('previews raw SQL and Flux, and only raw builder SQL and MQTT stream', () => {
    const q = {
      source: 'sql' as const,
      mode: 'builder' as const,
      metric: 'temperature',
      aggregation: 'none' as const,
      live: true,
    };
    const sql = buildSqlPreview(q);
    expect(sql).toContain('SELECT time, device, sensor, value');
    expect(sql).not.toContain('GROUP BY');
    expect(sql).toContain('then live');
    expect(buildFluxPreview({ ...q, source: 'flux' })).not.toContain('aggregateWindow');
    expect(liveStreams(q)).toBe(true);
    expect(liveStreams({ ...q, aggregation: 'avg' })).toBe(true);
    expect(liveStreams({ ...q, format: 'table' })).toBe(false);
    expect(liveStreams({ ...q, aggregation: '' as never })).toBe(true); // provisioning writes ''
    expect(liveStreams({ ...q, mode: 'code' })).toBe(false);
    expect(liveStreams({ ...q, source: 'flux' })).toBe(false);
    expect(liveStreams({ source: 'mqtt', topic: 'pico/#' })).toBe(true);
    expect(aggregationOf({})).toBe('avg');
  });
});
