import { DataSource, normalizeList } from '../datasource';
import { FieldlineQuery } from '../types';
import { instanceSettings, makeDatasource, setupTemplateSrv } from '../test/helpers';

const q = (patch: Partial<FieldlineQuery>): FieldlineQuery => ({
  refId: 'A',
  source: 'sql',
  mode: 'builder',
  ...patch,
});

describe('applyTemplateVariables', () => {
  beforeEach(() => {
    setupTemplateSrv({
      device: ['pico', 'node1'],
      one: 'pico',
      metric: 'temperature',
      sensor: ['dht22', 'internal'],
      site: 'iiot',
      bucket: '5m',
    });
  });

  it('turns a multi-value device into a comma separated list', () => {
    const { ds } = makeDatasource();
    const out = ds.applyTemplateVariables(q({ device: '$device', metric: '$metric', sensor: '${sensor}' }), {});
    expect(out.device).toBe('pico,node1');
    expect(out.metric).toBe('temperature');
    expect(out.sensor).toBe('dht22,internal');
  });

  it('accepts the {a,b} form typed by hand', () => {
    const { ds } = makeDatasource();
    expect(ds.applyTemplateVariables(q({ device: '{a, b}' }), {}).device).toBe('a,b');
    expect(ds.applyTemplateVariables(q({ device: '$one' }), {}).device).toBe('pico');
  });

  it('interpolates every string field', () => {
    const { ds } = makeDatasource();
    const out = ds.applyTemplateVariables(
      q({
        mode: 'code',
        interval: '$bucket',
        rawSql: "SELECT * FROM readings WHERE device IN ($device) AND metric = '$metric'",
        flux: 'from(bucket: v.bucket) |> filter(fn: (r) => r._measurement == "$metric")',
        topic: '$site/+/temperature',
        template: '$site/{device}/{metric}',
      }),
      {}
    );
    expect(out.interval).toBe('5m');
    expect(out.rawSql).toBe("SELECT * FROM readings WHERE device IN ('pico','node1') AND metric = 'temperature'");
    expect(out.flux).toContain('r._measurement == "temperature"');
    expect(out.topic).toBe('iiot/+/temperature');
    expect(out.template).toBe('iiot/{device}/{metric}');
  });

  it('leaves absent fields absent and other fields alone', () => {
    const { ds } = makeDatasource();
    const out = ds.applyTemplateVariables(q({ metric: 'humidity', live: true, aggregation: 'max' }), {});
    expect(out.device).toBeUndefined();
    expect(out.live).toBe(true);
    expect(out.aggregation).toBe('max');
  });
});

describe('normalizeList', () => {
  it('strips braces and blanks', () => {
    expect(normalizeList('{ a , b ,}')).toBe('a,b');
    expect(normalizeList('')).toBe('');
    expect(normalizeList(undefined)).toBeUndefined();
  });
});

describe('filterQuery', () => {
  const { ds } = makeDatasource();
  it.each([
    [q({}), false],
    [q({ metric: 'temperature' }), true],
    [q({ metric: '  ' }), false],
    [q({ mode: 'code' }), false],
    [q({ mode: 'code', metric: 'temperature' }), false],
    [q({ mode: 'code', rawSql: 'SELECT 1' }), true],
    [q({ source: 'flux', mode: 'code', rawSql: 'SELECT 1' }), false],
    [q({ source: 'flux', mode: 'code', flux: 'from(bucket: v.bucket)' }), true],
    [q({ source: 'flux', metric: 'temperature' }), true],
    [q({ source: 'mqtt' }), false],
    [q({ source: 'mqtt', topic: 'pico/#' }), true],
    [q({ metric: 'temperature', hide: true }), false],
    [q({ variable: 'devices' }), true],
  ])('%j → %s', (query, expected) => {
    expect(ds.filterQuery(query)).toBe(expected);
  });
});

describe('resources', () => {
  it('calls the backend resources with interpolated filters', async () => {
    setupTemplateSrv({ device: ['pico', 'node1'] });
    const { ds, getResource } = makeDatasource({ metrics: ['temperature', 'humidity'] });
    await expect(ds.getMetrics({ device: '$device', sensor: '' })).resolves.toEqual(['temperature', 'humidity']);
    expect(getResource).toHaveBeenCalledWith('metrics', { device: 'pico,node1' });
  });

  it('lists template variables as picker options', () => {
    setupTemplateSrv({ device: ['a'], metric: 'x' });
    const { ds } = makeDatasource();
    expect(ds.getVariableOptions().map((o) => o.value)).toEqual(['$device', '$metric']);
  });
});

describe('variable support', () => {
  it('sends variable queries as sql builder queries', () => {
    const { ds } = makeDatasource();
    const spy = jest.spyOn(ds, 'query').mockReturnValue({} as ReturnType<typeof ds.query>);
    const support = ds.variables as unknown as { query: (r: unknown) => unknown };
    support.query({ targets: [{ refId: 'v', variable: 'sensors', source: 'mqtt', mode: 'code' }] });
    expect(spy).toHaveBeenCalledWith(
      expect.objectContaining({
        targets: [expect.objectContaining({ source: 'sql', mode: 'builder', variable: 'sensors' })],
      })
    );
  });
});

describe('annotations', () => {
  it('runs an annotation query as a table, never live', () => {
    const ds = new DataSource(instanceSettings);
    const q = ds.annotations!.prepareQuery!({
      name: 'offline',
      enable: true,
      iconColor: 'red',
      target: { refId: 'Anno', source: 'sql', mode: 'code', rawSql: 'SELECT 1', live: true },
    } as never);
    expect(q).toMatchObject({ format: 'table', live: false, rawSql: 'SELECT 1', source: 'sql', mode: 'code' });
    expect(ds.annotations!.prepareQuery!({ name: 'x', enable: true, iconColor: 'red' } as never)).toBeUndefined();
  });
});
