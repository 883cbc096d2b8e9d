import { fireEvent, render, screen } from '@testing-library/react';
import React from 'react';

import { DataSourceSettings } from '@grafana/data';
import { config } from '@grafana/runtime';

import { ConfigEditor } from '../components/ConfigEditor';
import { FieldlineOptions, FieldlineSecureJsonData } from '../types';

type Settings = DataSourceSettings<FieldlineOptions, FieldlineSecureJsonData>;

function settings(patch: Partial<Settings> = {}): Settings {
  return {
    id: 1,
    uid: 'fl',
    orgId: 1,
    name: 'Fieldline',
    type: 'fieldline-telemetry-datasource',
    typeName: 'Fieldline',
    typeLogoUrl: '',
    access: 'proxy',
    url: '',
    user: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    withCredentials: false,
    readOnly: false,
    version: 1,
    jsonData: {},
    secureJsonFields: {},
    ...patch,
  } as Settings;
}

const byId = (container: HTMLElement, id: string) => {
  const el = container.querySelector(`#${id}`);
  if (!el) {
    throw new Error(`#${id} not found`);
  }
  return el as HTMLInputElement;
};

describe('ConfigEditor', () => {
  it('renders the four sections and the Save & test pointer', () => {
    render(<ConfigEditor options={settings()} onOptionsChange={jest.fn()} />);
    expect(screen.getByText('PostgreSQL / TimescaleDB')).toBeInTheDocument();
    expect(screen.getByText('InfluxDB')).toBeInTheDocument();
    expect(screen.getByText('MQTT')).toBeInTheDocument();
    expect(screen.getByText('Live')).toBeInTheDocument();
    expect(screen.getByText('Save & test')).toBeInTheDocument();
  });

  it('writes the live settings and validates their durations', () => {
    const onOptionsChange = jest.fn();
    const { container, rerender } = render(<ConfigEditor options={settings()} onOptionsChange={onOptionsChange} />);
    fireEvent.change(byId(container, 'fl-live-seam'), { target: { value: '2s' } });
    expect(onOptionsChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ jsonData: expect.objectContaining({ liveSeamDelay: '2s' }) })
    );
    rerender(
      <ConfigEditor options={settings({ jsonData: { liveFrameInterval: 'fast' } })} onOptionsChange={onOptionsChange} />
    );
    expect(screen.getByText('A duration such as 5s, 250ms or 1m')).toBeInTheDocument();
  });

  it('writes the Viewer limits: response size in bytes, Flux restriction, $SYS and topic prefixes', () => {
    const onOptionsChange = jest.fn();
    const { container } = render(<ConfigEditor options={settings()} onOptionsChange={onOptionsChange} />);
    expect((byId(container, 'fl-restrict-flux') as HTMLInputElement).checked).toBe(true);
    fireEvent.change(byId(container, 'fl-max-response'), { target: { value: '8' } });
    expect(onOptionsChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ jsonData: expect.objectContaining({ maxResponseBytes: 8 * 1024 * 1024 }) })
    );
    fireEvent.change(byId(container, 'fl-topic-prefixes'), { target: { value: 'pico/, iiot/ ,' } });
    expect(onOptionsChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ jsonData: expect.objectContaining({ mqtt: { topicPrefixes: ['pico/', 'iiot/'] } }) })
    );
    fireEvent.click(byId(container, 'fl-restrict-flux'));
    expect(onOptionsChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ jsonData: expect.objectContaining({ influx: { restrictFlux: false } }) })
    );
  });

  it('writes jsonData for plain fields', () => {
    const onOptionsChange = jest.fn();
    const { container } = render(<ConfigEditor options={settings()} onOptionsChange={onOptionsChange} />);
    fireEvent.change(byId(container, 'fl-pg-host'), { target: { value: 'db:5432' } });
    expect(onOptionsChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ jsonData: expect.objectContaining({ postgres: { host: 'db:5432' } }) })
    );
  });

  it('sets a secure field into secureJsonData', () => {
    const onOptionsChange = jest.fn();
    const { container } = render(<ConfigEditor options={settings()} onOptionsChange={onOptionsChange} />);
    fireEvent.change(byId(container, 'fl-mqtt-password'), { target: { value: 's3cret' } });
    const next = onOptionsChange.mock.lastCall[0] as Settings;
    expect(next.secureJsonData).toEqual({ mqttPassword: 's3cret' });
    expect(next.jsonData).toEqual({});
  });

  it('shows configured secrets and resets them via secureJsonFields', () => {
    const onOptionsChange = jest.fn();
    render(
      <ConfigEditor
        options={settings({ secureJsonFields: { postgresPassword: true, influxToken: true } })}
        onOptionsChange={onOptionsChange}
      />
    );
    const resets = screen.getAllByRole('button', { name: 'Reset' });
    expect(resets).toHaveLength(2);
    fireEvent.click(resets[0]);
    const next = onOptionsChange.mock.lastCall[0] as Settings;
    expect(next.secureJsonFields).toEqual({ postgresPassword: false, influxToken: true });
    expect(next.secureJsonData).toEqual({ postgresPassword: '' });
  });

  it('shows the TLS secrets only when their switches are on', () => {
    const { rerender } = render(<ConfigEditor options={settings()} onOptionsChange={jest.fn()} />);
    expect(screen.queryByText('Client key')).not.toBeInTheDocument();
    rerender(
      <ConfigEditor
        options={settings({ jsonData: { mqtt: { tlsAuth: true, tlsWithCACert: true } } })}
        onOptionsChange={jest.fn()}
      />
    );
    expect(screen.getByText('Client key')).toBeInTheDocument();
    expect(screen.getByText('CA certificate')).toBeInTheDocument();
  });

  it('shows PostgreSQL certificates for TLS modes only, and InfluxDB ones behind their switches', () => {
    const onOptionsChange = jest.fn();
    const { container, rerender } = render(
      <ConfigEditor
        options={settings({ jsonData: { postgres: { host: 'db.example:5432', sslMode: 'disable' } } })}
        onOptionsChange={onOptionsChange}
      />
    );
    expect(container.querySelector('#fl-pg-cacert')).toBeNull();
    expect(container.querySelector('#fl-influx-cacert')).toBeNull();
    rerender(
      <ConfigEditor
        options={settings({
          jsonData: { postgres: { host: 'db.example:5432', sslMode: 'verify-full' }, influx: { tlsWithCACert: true } },
          secureJsonFields: { postgresTLSClientKey: true },
        })}
        onOptionsChange={onOptionsChange}
      />
    );
    expect(container.querySelector('#fl-pg-cacert')).not.toBeNull();
    expect(container.querySelector('#fl-pg-clientkey')).toBeDisabled(); // configured: "configured" with a Reset button
    expect(container.querySelector('#fl-influx-cacert')).not.toBeNull();
    expect(container.querySelector('#fl-influx-clientcert')).toBeNull();
    fireEvent.change(container.querySelector('#fl-influx-cacert')!, { target: { value: 'PEM' } });
    expect((onOptionsChange.mock.lastCall[0] as Settings).secureJsonData).toEqual({ influxTLSCACert: 'PEM' });
    fireEvent.change(container.querySelector('#fl-pg-servername')!, { target: { value: 'db.internal' } });
    expect((onOptionsChange.mock.lastCall[0] as Settings).jsonData.postgres?.tlsServerName).toBe('db.internal');
  });

  it('does not claim an sslMode the backend would not use', () => {
    // Unset, the backend uses require (disable only on loopback): the editor must not show "disable".
    render(
      <ConfigEditor
        options={settings({ jsonData: { postgres: { host: 'db.example:5432', database: 'f', user: 'g' } } })}
        onOptionsChange={jest.fn()}
      />
    );
    expect(screen.getByText('Default: require (disable on localhost / 127.0.0.1)')).toBeInTheDocument();
    expect(screen.queryByText('disable')).not.toBeInTheDocument();
  });

  it('validates the MQTT URL scheme inline', () => {
    const { rerender } = render(
      <ConfigEditor
        options={settings({ jsonData: { mqtt: { url: 'tcp://localhost:1883' } } })}
        onOptionsChange={jest.fn()}
      />
    );
    expect(screen.queryByText(/Scheme must be/)).not.toBeInTheDocument();
    rerender(
      <ConfigEditor
        options={settings({ jsonData: { mqtt: { url: 'http://localhost:1883' } } })}
        onOptionsChange={jest.fn()}
      />
    );
    expect(
      screen.getByText('Scheme must be one of tcp, mqtt, ssl, tls, mqtts, tcps, ws, wss (got http://)')
    ).toBeInTheDocument();
  });

  it('validates host:port and the InfluxDB URL inline', () => {
    render(
      <ConfigEditor
        options={settings({ jsonData: { postgres: { host: 'db:99999' }, influx: { url: 'localhost:8086' } } })}
        onOptionsChange={jest.fn()}
      />
    );
    expect(screen.getByText('Port must be between 1 and 65535')).toBeInTheDocument();
    expect(screen.getByText(/Use an http:\/\/ or https:\/\/ URL/)).toBeInTheDocument();
  });

  it('warns when live has nothing to follow, not when a source is configured', () => {
    const { rerender } = render(<ConfigEditor options={settings({ jsonData: {} })} onOptionsChange={jest.fn()} />);
    expect(screen.getByText(/Live queries need PostgreSQL/)).toBeInTheDocument();
    rerender(
      <ConfigEditor
        options={settings({ jsonData: { mqtt: { url: 'tcp://broker:1883' } } })}
        onOptionsChange={jest.fn()}
      />
    );
    expect(screen.queryByText(/Live queries need PostgreSQL/)).not.toBeInTheDocument();
  });
});

describe('Private Data source Connect', () => {
  afterEach(() => {
    config.secureSocksDSProxyEnabled = false;
  });

  it('is hidden when the Grafana server has no secure socks proxy', () => {
    config.secureSocksDSProxyEnabled = false;
    render(<ConfigEditor options={settings()} onOptionsChange={() => {}} />);
    expect(screen.queryByText('Private Data source Connect')).not.toBeInTheDocument();
  });

  it("sets enableSecureSocksProxy with @grafana/ui's switch when the server has one", () => {
    config.secureSocksDSProxyEnabled = true;
    const onChange = jest.fn();
    render(<ConfigEditor options={settings()} onOptionsChange={onChange} />);
    expect(screen.getByText('Private Data source Connect')).toBeInTheDocument();
    const section = screen.getByText('Secure Socks Proxy').parentElement as HTMLElement;
    fireEvent.click(section.querySelector('input[type="checkbox"]') as HTMLInputElement);
    expect(onChange).toHaveBeenCalledWith(
      expect.objectContaining({ jsonData: expect.objectContaining({ enableSecureSocksProxy: true }) })
    );
  });
});
