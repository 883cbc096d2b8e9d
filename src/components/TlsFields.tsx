import { css } from '@emotion/css';
import React, { FormEvent } from 'react';

import { GrafanaTheme2 } from '@grafana/data';
import { Field, Input, SecretTextArea, Switch, useStyles2 } from '@grafana/ui';

/** One secureJsonData PEM field: whether Grafana holds a value, and how to reset and change it. */
export interface PemSecret {
  configured: boolean;
  onReset: () => void;
  onChange: (e: FormEvent<HTMLInputElement | HTMLTextAreaElement>) => void;
}

/** The editor's switches: "With CA cert" and "TLS client auth" show their PEM fields (off: the backend drops
 * the saved values). Without toggles, the PEM fields are always shown. */
export interface TlsToggles {
  skipVerify: boolean;
  withCACert: boolean;
  auth: boolean;
  onSkipVerify: (v: boolean) => void;
  onWithCACert: (v: boolean) => void;
  onAuth: (v: boolean) => void;
}

export interface TlsFieldsProps {
  /** Prefix of the element ids, e.g. "fl-mqtt". */
  idPrefix: string;
  /** What the certificate belongs to, for descriptions: "broker", "server". */
  peer: string;
  width: number;
  toggles?: TlsToggles;
  serverName?: string;
  onServerName: (v: string | undefined) => void;
  ca: PemSecret;
  clientCert: PemSecret;
  clientKey: PemSecret;
}

/** The TLS part of a connection's settings (MQTT, PostgreSQL, InfluxDB): switches, server name, PEM secrets. */
export function TlsFields(props: TlsFieldsProps) {
  const { idPrefix, peer, width, toggles, ca, clientCert, clientKey } = props;
  const styles = useStyles2(getStyles);
  const showCA = !toggles || toggles.withCACert;
  const showClient = !toggles || toggles.auth;
  const pem = (id: string, label: string, placeholder: string, s: PemSecret) => (
    <Field label={label}>
      <SecretTextArea
        id={`${idPrefix}-${id}`}
        cols={60}
        rows={5}
        isConfigured={s.configured}
        placeholder={placeholder}
        onReset={s.onReset}
        onChange={s.onChange}
      />
    </Field>
  );
  return (
    <>
      {toggles && (
        <div className={styles.switches}>
          <Field label="Skip TLS verify" description={`Do not check the ${peer} certificate`}>
            <Switch
              id={`${idPrefix}-skipverify`}
              value={toggles.skipVerify}
              onChange={(e) => toggles.onSkipVerify(e.currentTarget.checked)}
            />
          </Field>
          <Field label="With CA cert" description="Trust a private CA">
            <Switch
              id={`${idPrefix}-withca`}
              value={toggles.withCACert}
              onChange={(e) => toggles.onWithCACert(e.currentTarget.checked)}
            />
          </Field>
          <Field label="TLS client auth" description="Present a client certificate">
            <Switch
              id={`${idPrefix}-tlsauth`}
              value={toggles.auth}
              onChange={(e) => toggles.onAuth(e.currentTarget.checked)}
            />
          </Field>
        </div>
      )}
      <Field
        label="TLS server name"
        description={`Check the ${peer} certificate against this name instead of the host.`}
      >
        <Input
          id={`${idPrefix}-servername`}
          width={width}
          placeholder={`${peer}.example.com`}
          value={props.serverName ?? ''}
          onChange={(e) => props.onServerName(e.currentTarget.value || undefined)}
        />
      </Field>
      {showCA && pem('cacert', 'CA certificate', '-----BEGIN CERTIFICATE-----', ca)}
      {showClient && (
        <>
          {pem('clientcert', 'Client certificate', '-----BEGIN CERTIFICATE-----', clientCert)}
          {pem('clientkey', 'Client key', '-----BEGIN PRIVATE KEY-----', clientKey)}
        </>
      )}
    </>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  switches: css({
    display: 'flex',
    gap: theme.spacing(4),
    flexWrap: 'wrap',
  }),
});
