import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import { FieldlineOptions, FieldlineQuery, FieldlineSecureJsonData } from './types';

export const plugin = new DataSourcePlugin<DataSource, FieldlineQuery, FieldlineOptions, FieldlineSecureJsonData>(
  DataSource
)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
