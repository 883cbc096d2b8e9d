import { DataSourceInstanceSettings, PluginType, TypedVariableModel } from '@grafana/data';
import { setTemplateSrv, TemplateSrv } from '@grafana/runtime';

import { DataSource, QueryPreview } from '../datasource';
import { FieldlineOptions, FieldlineQuery } from '../types';

export const instanceSettings: DataSourceInstanceSettings<FieldlineOptions> = {
  id: 1,
  uid: 'fieldline-uid',
  type: 'fieldline-telemetry-datasource',
  name: 'Fieldline',
  access: 'proxy',
  readOnly: false,
  jsonData: {},
  meta: {
    id: 'fieldline-telemetry-datasource',
    name: 'Fieldline',
    type: PluginType.datasource,
    module: '',
    baseUrl: '',
    info: {
      author: { name: 'Fieldline' },
      description: '',
      links: [],
      logos: { small: '', large: '' },
      screenshots: [],
      updated: '',
      version: '',
    },
  },
};

type Vars = Record<string, string | string[]>;

/**
 * A small stand-in for Grafana's TemplateSrv: replaces $name and ${name}; arrays use the format
 * function when given, else Grafana's default glob format {a,b}.
 */
export function setupTemplateSrv(vars: Vars): TemplateSrv {
  const srv = {
    getVariables: () =>
      Object.keys(vars).map((name) => ({ name, multi: Array.isArray(vars[name]) } as unknown as TypedVariableModel)),
    replace: (target?: string, _scoped?: unknown, format?: unknown) => {
      if (!target) {
        return '';
      }
      return target.replace(/\$\{(\w+)\}|\$(\w+)/g, (match, a, b) => {
        const name = a ?? b;
        if (!(name in vars)) {
          return match;
        }
        const value = vars[name];
        if (typeof format === 'function') {
          return format(value, { name, multi: Array.isArray(value), includeAll: false });
        }
        return Array.isArray(value) ? `{${value.join(',')}}` : value;
      });
    },
    containsTemplate: (t?: string) => !!t && /\$/.test(t),
    updateTimeRange: () => {},
  } as unknown as TemplateSrv;
  setTemplateSrv(srv);
  return srv;
}

/** A stand-in for the backend's /preview: says which query it was asked about (the real text is tested in Go). */
export function fakePreview(body: { query: FieldlineQuery; from?: number; to?: number }): QueryPreview {
  const q = body.query;
  return {
    language: q.source === 'flux' ? 'flux' : 'sql',
    text: `backend ${q.source} ${q.aggregation ?? 'none'} ${q.metric}`,
    params: q.source === 'flux' ? undefined : [`$1 = '${q.metric}'`],
    code: `seed ${q.source} metric = '${q.metric}'`,
    notes: q.live ? ['Live: from the backend'] : undefined,
  };
}

/**
 * A DataSource whose getResource answers from a table and whose postResource answers /preview (fakePreview, or
 * the given function, which may throw); returns the mocks for assertions.
 */
export function makeDatasource(
  resources: Record<string, string[]> = {},
  preview: (body: { query: FieldlineQuery; from?: number; to?: number }) => QueryPreview = fakePreview
) {
  const ds = new DataSource(instanceSettings);
  const getResource = jest
    .spyOn(ds, 'getResource')
    .mockImplementation(async (path: string) => resources[path] ?? []) as jest.SpyInstance;
  const postResource = jest.spyOn(ds, 'postResource').mockImplementation(async (path: string, body?: unknown) => {
    if (path !== 'preview') {
      throw new Error(`unexpected POST ${path}`);
    }
    return preview(body as { query: FieldlineQuery });
  }) as jest.SpyInstance;
  return { ds, getResource, postResource };
}
