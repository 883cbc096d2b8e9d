import { DataSourceInstanceSettings, PluginType, TypedVariableModel } from '@grafana/data';
import { setTemplateSrv, TemplateSrv } from '@grafana/runtime';

import { DataSource } from '../datasource';
import { FieldlineOptions } from '../types';

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

/** A DataSource whose getResource answers from a table; returns the mock for assertions. */
export function makeDatasource(resources: Record<string, string[]> = {}) {
  const ds = new DataSource(instanceSettings);
  const getResource = jest
    .spyOn(ds, 'getResource')
    .mockImplementation(async (path: string) => resources[path] ?? []) as jest.SpyInstance;
  return { ds, getResource };
}
