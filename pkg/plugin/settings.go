package plugin

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/gtime"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/tablemap"
	"github.com/fieldline-iot/fieldline/internal/tlsconf"
	"github.com/fieldline-iot/fieldline/pkg/fluxquery"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// Defaults, as in Grafana's SQL data sources.
const (
	DefaultStatementTimeout = 30 * time.Second
	DefaultRowLimit         = 1_000_000
	DefaultMaxConns         = 10
	// DefaultMaxResponseBytes bounds what one code query (SQL or Flux) may read from its database: about
	// 130 000 rows of ten numeric columns. Past it the query fails with an error that names the setting.
	DefaultMaxResponseBytes = 16 << 20
	// DefaultMaxBytesInFlight bounds what all code queries of one data source may hold at once (each reserves
	// maxResponseBytes while it runs; more wait).
	DefaultMaxBytesInFlight = 64 << 20
)

// SSLModes are the libpq sslmode values postgres.sslMode accepts, in the order the config editor offers them.
var SSLModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// Settings is the validated configuration of one data source (jsonData + secureJsonData).
type Settings struct {
	Postgres *PostgresSettings // nil when not configured
	Influx   *InfluxSettings   // nil when not configured
	MQTT     *MQTTSettings     // nil when not configured

	StatementTimeout time.Duration
	RowLimit         int64
	MaxResponseBytes int64 // per code query response (SQL and Flux)
	MaxBytesInFlight int64 // all code queries of the instance at once
}

// PostgresSettings addresses the PostgreSQL/TimescaleDB database.
type PostgresSettings struct {
	Host      string // host:port
	Database  string
	User      string
	Password  string // secureJsonData.postgresPassword
	SSLMode   string // disable | require | verify-ca | verify-full (default: disable on loopback, else require)
	Timescale store.TimescaleMode
	// NoRollup serves aggregates from the raw table only: for plain-PostgreSQL databases fed by foreign writers
	// that bypass the ingester's rollup merge (jsonData.postgres.useRollup = false).
	NoRollup bool
	MaxConns int32
	// Table maps the user's own table (jsonData.postgres.table) onto the builder's columns; nil: Fieldline's
	// readings table and rollups.
	Table *sqlquery.Table
	// NotifyChannel is the user's NOTIFY channel for live queries on Table (its payload a JSON row named by the
	// table's columns, e.g. row_to_json(NEW)); "": live queries on Table are refused.
	NotifyChannel string
	// TLS is the PEM of secureJsonData.postgresTLSCACert, postgresTLSClientCert, postgresTLSClientKey and
	// jsonData.postgres.tlsServerName, applied with SSLMode's meaning by store.ApplyTLS.
	TLS tlsconf.Options
}

// InfluxSettings addresses the InfluxDB bucket (v2 API; InfluxDB 1.8: bucket = database[/retention policy]).
type InfluxSettings struct {
	URL    string
	Org    string
	Bucket string
	Token  string // secureJsonData.influxToken
	// UnrestrictedFlux lifts the code-Flux checks (imports that reach outside InfluxDB, from/to with host:);
	// jsonData.influx.restrictFlux = false. Off by default: any Viewer can send code Flux.
	UnrestrictedFlux bool
	// Schema names the device tag, sensor tag and value field of the builder's series (jsonData.influx.deviceTag,
	// sensorTag, valueField); zero: the ingester's device, sensor, value.
	Schema fluxquery.Schema
	TLS    *tls.Config // nil: TLS 1.2+ with the system roots for https:// URLs
}

// MQTTSettings addresses the broker.
type MQTTSettings struct {
	URL            string // tcp:// ssl:// ws:// wss://
	ClientIDPrefix string
	// ClientID, when set, is the exact client id of the plugin's one broker connection (brokers that admit known
	// ids only); the health check then reuses that connection instead of opening a second one with the same id.
	ClientID string
	Username string
	Password string // secureJsonData.mqttPassword
	TLS      *tls.Config
	// AllowSys admits $SYS/... filters (broker statistics) in live queries and /topics (jsonData.mqtt.allowSysTopics).
	AllowSys bool
	// TopicPrefixes, when set, is the allow-list of topic prefixes user filters must stay under
	// (jsonData.mqtt.topicPrefixes, e.g. ["pico/", "iiot/"]).
	TopicPrefixes []string
}

type jsonSettings struct {
	Postgres *struct {
		Host          string     `json:"host"`
		Database      string     `json:"database"`
		User          string     `json:"user"`
		SSLMode       string     `json:"sslMode"`
		Timescale     string     `json:"timescale"`
		UseRollup     *bool      `json:"useRollup"`
		MaxConns      *int       `json:"maxConns"`
		Table         *tableJSON `json:"table"`
		TLSServerName string     `json:"tlsServerName"`
	} `json:"postgres"`
	Influx *struct {
		URL           string   `json:"url"`
		Org           string   `json:"org"`
		Bucket        string   `json:"bucket"`
		RestrictFlux  *bool    `json:"restrictFlux"`
		DeviceTag     string   `json:"deviceTag"`
		SensorTag     string   `json:"sensorTag"`
		ValueField    string   `json:"valueField"`
		LabelTags     []string `json:"labelTags"`
		TLSSkipVerify bool     `json:"tlsSkipVerify"`
		TLSServerName string   `json:"tlsServerName"`
		TLSWithCACert *bool    `json:"tlsWithCACert"` // false: the saved CA is not used (absent: used when saved)
		TLSAuth       *bool    `json:"tlsAuth"`       // false: the saved client certificate is not used
	} `json:"influx"`
	MQTT *struct {
		URL            string   `json:"url"`
		ClientIDPrefix string   `json:"clientIdPrefix"`
		ClientID       string   `json:"clientId"`
		Username       string   `json:"username"`
		TLSSkipVerify  bool     `json:"tlsSkipVerify"`
		TLSServerName  string   `json:"tlsServerName"`
		TLSWithCACert  *bool    `json:"tlsWithCACert"` // false: the saved CA is not used (absent: used when saved)
		TLSAuth        *bool    `json:"tlsAuth"`       // false: the saved client certificate is not used
		AllowSysTopics bool     `json:"allowSysTopics"`
		TopicPrefixes  []string `json:"topicPrefixes"`
	} `json:"mqtt"`
	// EnableSecureSocksProxy routes all three connections through Grafana's secure SOCKS proxy (Private Data
	// source Connect) when the server has one; the SDK reads it (proxy.go).
	EnableSecureSocksProxy bool            `json:"enableSecureSocksProxy"`
	StatementTimeout       json.RawMessage `json:"statementTimeout"`
	RowLimit               *int64          `json:"rowLimit"`
	MaxResponseBytes       *int64          `json:"maxResponseBytes"`
	MaxBytesInFlight       *int64          `json:"maxBytesInFlight"`
}

// tableJSON is jsonData.postgres.table: the user's own table (docs/plugin.md, "Your own table").
type tableJSON = tablemap.JSON

// LoadSettings parses and validates a data source's settings. Errors name the offending field and never
// contain a secret.
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var j jsonSettings
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &j); err != nil {
			return Settings{}, fmt.Errorf("settings: jsonData is not valid: %w", err)
		}
	}
	sec := s.DecryptedSecureJSONData
	out := Settings{StatementTimeout: DefaultStatementTimeout, RowLimit: DefaultRowLimit,
		MaxResponseBytes: DefaultMaxResponseBytes, MaxBytesInFlight: DefaultMaxBytesInFlight}
	var errs []error

	if j.Postgres != nil && (j.Postgres.Host != "" || j.Postgres.Database != "") {
		p, err := loadPostgres(j.Postgres.Host, j.Postgres.Database, j.Postgres.User, j.Postgres.SSLMode, j.Postgres.Timescale)
		if err != nil {
			errs = append(errs, err)
		} else {
			p.Password = sec["postgresPassword"]
			if p.Table, p.NotifyChannel, err = j.Postgres.Table.Load(); err != nil {
				errs = append(errs, err)
			}
			p.TLS = tlsSecrets(sec, postgresTLSKeys, nil, nil)
			p.TLS.ServerName = j.Postgres.TLSServerName
			if _, err := tlsconf.Config(p.TLS); err != nil {
				errs = append(errs, tlsSettingsError(postgresTLSKeys, err))
			}
			p.NoRollup = j.Postgres.UseRollup != nil && !*j.Postgres.UseRollup
			p.MaxConns = DefaultMaxConns
			if j.Postgres.MaxConns != nil {
				if *j.Postgres.MaxConns < 1 || *j.Postgres.MaxConns > 100 {
					errs = append(errs, fmt.Errorf("postgres.maxConns %d: want 1..100", *j.Postgres.MaxConns))
				} else {
					p.MaxConns = int32(*j.Postgres.MaxConns)
				}
			}
			out.Postgres = p
		}
	}
	if j.Influx != nil && j.Influx.URL != "" {
		i, err := loadInflux(j.Influx.URL, j.Influx.Org, j.Influx.Bucket)
		if err != nil {
			errs = append(errs, err)
		} else {
			i.Token = sec["influxToken"]
			i.UnrestrictedFlux = j.Influx.RestrictFlux != nil && !*j.Influx.RestrictFlux
			i.Schema = fluxquery.Schema{DeviceTag: j.Influx.DeviceTag, SensorTag: j.Influx.SensorTag, ValueField: j.Influx.ValueField, LabelTags: j.Influx.LabelTags}
			if len(j.Influx.LabelTags) > 16 {
				errs = append(errs, errors.New("influx.labelTags: at most 16 tags"))
			}
			for k, tag := range j.Influx.LabelTags {
				if tag == "" || len(tag) > 256 || !utf8.ValidString(tag) || strings.ContainsRune(tag, 0) || strings.HasPrefix(tag, "_") ||
					tag == i.Schema.Device() || tag == i.Schema.Sensor() || slices.Contains(j.Influx.LabelTags[:k], tag) {
					errs = append(errs, fmt.Errorf("influx.labelTags[%d]: a tag name (not the device or sensor tag, not twice, not starting with _)", k))
				}
			}
			for name, v := range map[string]string{"influx.deviceTag": j.Influx.DeviceTag, "influx.sensorTag": j.Influx.SensorTag, "influx.valueField": j.Influx.ValueField} {
				if v != "" && (len(v) > 256 || !utf8.ValidString(v) || strings.ContainsRune(v, 0) || strings.HasPrefix(v, "_")) {
					errs = append(errs, fmt.Errorf("%s: a tag or field name (UTF-8, at most 256 bytes, not starting with _)", name))
				}
			}
			if i.Schema.DeviceTag != "" && i.Schema.DeviceTag == i.Schema.SensorTag {
				errs = append(errs, errors.New("influx.deviceTag and influx.sensorTag must differ"))
			}
			o := tlsSecrets(sec, influxTLSKeys, j.Influx.TLSWithCACert, j.Influx.TLSAuth)
			o.ServerName, o.InsecureSkipVerify = j.Influx.TLSServerName, j.Influx.TLSSkipVerify
			if i.TLS, err = tlsconf.Config(o); err != nil {
				errs = append(errs, tlsSettingsError(influxTLSKeys, err))
			} else {
				out.Influx = i
			}
		}
	}
	if j.MQTT != nil && j.MQTT.URL != "" {
		o := tlsSecrets(sec, mqttTLSKeys, j.MQTT.TLSWithCACert, j.MQTT.TLSAuth)
		o.ServerName, o.InsecureSkipVerify = j.MQTT.TLSServerName, j.MQTT.TLSSkipVerify
		m, err := loadMQTT(j.MQTT.URL, j.MQTT.ClientIDPrefix, j.MQTT.Username, sec["mqttPassword"], o)
		if err != nil {
			errs = append(errs, err)
		} else {
			m.AllowSys = j.MQTT.AllowSysTopics
			m.ClientID = j.MQTT.ClientID
			if id := m.ClientID; id != "" && (len(id) > 256 || !utf8.ValidString(id) || strings.ContainsRune(id, 0)) {
				errs = append(errs, errors.New("mqtt.clientId: at most 256 bytes of UTF-8, no NUL (MQTT 3.1.1 guarantees 1..23 characters [0-9a-zA-Z]; most brokers take more)"))
			}
			for i, p := range j.MQTT.TopicPrefixes {
				if p == "" || strings.ContainsAny(p, "+#\x00") || strings.HasPrefix(p, "$") {
					errs = append(errs, fmt.Errorf("mqtt.topicPrefixes[%d]: a plain topic prefix (no wildcards, not $...)", i))
				}
			}
			m.TopicPrefixes = j.MQTT.TopicPrefixes
			out.MQTT = m
		}
	}
	if len(j.StatementTimeout) > 0 && string(j.StatementTimeout) != "null" {
		d, err := parseTimeout(j.StatementTimeout)
		if err != nil {
			errs = append(errs, err)
		} else {
			out.StatementTimeout = d
		}
	}
	if j.RowLimit != nil {
		if *j.RowLimit < 1 {
			errs = append(errs, fmt.Errorf("rowLimit %d: must be at least 1", *j.RowLimit))
		} else {
			out.RowLimit = *j.RowLimit
		}
	}
	if j.MaxResponseBytes != nil {
		if *j.MaxResponseBytes < 1<<20 || *j.MaxResponseBytes > 1<<30 {
			errs = append(errs, fmt.Errorf("maxResponseBytes %d: want 1 MiB..1 GiB", *j.MaxResponseBytes))
		} else {
			out.MaxResponseBytes = *j.MaxResponseBytes
		}
	}
	if j.MaxBytesInFlight != nil {
		out.MaxBytesInFlight = *j.MaxBytesInFlight
	}
	if out.MaxBytesInFlight < out.MaxResponseBytes {
		errs = append(errs, fmt.Errorf("maxBytesInFlight %d: must be at least maxResponseBytes (%d)", out.MaxBytesInFlight, out.MaxResponseBytes))
	}
	if len(errs) == 0 && out.Postgres == nil && out.Influx == nil && out.MQTT == nil {
		errs = append(errs, errors.New("nothing configured: set postgres.host, influx.url or mqtt.url"))
	}
	if len(errs) > 0 {
		return Settings{}, fmt.Errorf("settings: %w", errors.Join(errs...))
	}
	return out, nil
}

func loadPostgres(host, database, user, sslMode, timescale string) (*PostgresSettings, error) {
	if host == "" {
		return nil, errors.New("postgres.host is required (host:port)")
	}
	// The value of a malformed field is never echoed: a URL with credentials pasted into the wrong field would
	// otherwise reach the health message, every query error and the logs.
	if strings.Contains(host, "://") || strings.ContainsAny(host, "@/ ") {
		return nil, errors.New("postgres.host: want host:port, not a URL (user and password have their own fields; the value is not shown)")
	}
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		// A bare host means the default port.
		if strings.Contains(err.Error(), "missing port") {
			h, port = host, "5432"
		} else {
			return nil, errors.New("postgres.host: want host:port (the value is not shown)")
		}
	}
	if h == "" {
		return nil, errors.New("postgres.host: want host:port (the value is not shown)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, errors.New("postgres.host: port must be 1..65535 (the value is not shown)")
	}
	if database == "" {
		return nil, errors.New("postgres.database is required")
	}
	if strings.Contains(database, "://") || strings.Contains(database, "@") {
		return nil, errors.New("postgres.database: a database name, not a URL (the value is not shown)")
	}
	if user == "" {
		return nil, errors.New("postgres.user is required")
	}
	if strings.ContainsAny(user, ":@/") {
		return nil, errors.New("postgres.user: a role name; the password has its own field (the value is not shown)")
	}
	switch sslMode {
	case "":
		sslMode = "require"
		if ip := net.ParseIP(h); (ip != nil && ip.IsLoopback()) || h == "localhost" {
			sslMode = "disable"
		}
	default:
		if !slices.Contains(SSLModes, sslMode) {
			return nil, fmt.Errorf("postgres.sslMode %q: want one of %s", quoteTrunc(sslMode), strings.Join(SSLModes, ", "))
		}
	}
	ts, err := store.ParseTimescaleMode(timescale)
	if err != nil {
		return nil, fmt.Errorf("postgres.timescale: %w", err)
	}
	return &PostgresSettings{Host: net.JoinHostPort(h, port), Database: database, User: user, SSLMode: sslMode, Timescale: ts}, nil
}

func loadInflux(rawURL, org, bucket string) (*InfluxSettings, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("influx.url: want http(s)://host:port (the value is not shown)")
	}
	if u.User != nil {
		return nil, errors.New("influx.url must not carry credentials: put the token in secureJsonData.influxToken")
	}
	if bucket == "" {
		return nil, errors.New("influx.bucket is required")
	}
	return &InfluxSettings{URL: strings.TrimRight(rawURL, "/"), Org: org, Bucket: bucket}, nil
}

// tlsKeys are the secureJsonData keys of one connection's TLS PEM.
type tlsKeys struct{ ca, cert, key string }

var (
	mqttTLSKeys     = tlsKeys{"tlsCACert", "tlsClientCert", "tlsClientKey"}
	postgresTLSKeys = tlsKeys{"postgresTLSCACert", "postgresTLSClientCert", "postgresTLSClientKey"}
	influxTLSKeys   = tlsKeys{"influxTLSCACert", "influxTLSClientCert", "influxTLSClientKey"}
)

// tlsSecrets returns the saved PEM of keys, without the CA when the editor's "With CA cert" is off, and without
// the client certificate and key when "TLS client auth" is off: Grafana keeps secure values after a toggle is
// turned off, and a toggle that is off must not leave them in use. Settings without the toggles (provisioned
// files) use what is saved.
func tlsSecrets(sec map[string]string, keys tlsKeys, withCA, auth *bool) tlsconf.Options {
	var o tlsconf.Options
	if withCA == nil || *withCA {
		o.CA = []byte(sec[keys.ca])
	}
	if auth == nil || *auth {
		o.Cert, o.Key = []byte(sec[keys.cert]), []byte(sec[keys.key])
	}
	return o
}

// tlsSettingsError names the secureJsonData field of a tlsconf error, without its value.
func tlsSettingsError(keys tlsKeys, err error) error {
	switch {
	case errors.Is(err, tlsconf.ErrNoCACert):
		return fmt.Errorf("secureJsonData.%s: no PEM certificate found", keys.ca)
	case errors.Is(err, tlsconf.ErrCertWithoutKey):
		return fmt.Errorf("secureJsonData.%s and %s must be set together", keys.cert, keys.key)
	default:
		return fmt.Errorf("secureJsonData.%s/%s: not a valid PEM certificate and key pair", keys.cert, keys.key)
	}
}

func loadMQTT(rawURL, prefix, user, password string, o tlsconf.Options) (*MQTTSettings, error) {
	u, err := mqttconn.ParseURL(rawURL, false)
	switch {
	case errors.Is(err, mqttconn.ErrCredentialsInURL):
		return nil, errors.New("mqtt.url must not carry credentials: use mqtt.username and secureJsonData.mqttPassword")
	case err != nil:
		return nil, fmt.Errorf("mqtt.url: %w", err)
	}
	if prefix == "" {
		prefix = "fieldline-grafana"
	}
	if len(prefix) > 32 {
		return nil, errors.New("mqtt.clientIdPrefix: at most 32 characters")
	}
	m := &MQTTSettings{URL: rawURL, ClientIDPrefix: prefix, Username: user, Password: password}
	if mqttconn.Secure(u) || len(o.CA) > 0 || len(o.Cert) > 0 {
		cfg, err := tlsconf.Config(o)
		if err != nil {
			return nil, tlsSettingsError(mqttTLSKeys, err)
		}
		m.TLS = cfg
	}
	return m, nil
}

func parseTimeout(raw json.RawMessage) (time.Duration, error) {
	var secs float64
	if err := json.Unmarshal(raw, &secs); err == nil {
		if secs <= 0 || secs > 3600 {
			return 0, fmt.Errorf("statementTimeout %v s: want 0 < seconds <= 3600", secs)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("statementTimeout: want a duration such as \"30s\" or a number of seconds")
	}
	d, err := gtime.ParseDuration(s)
	if err != nil || d <= 0 || d > time.Hour {
		return 0, fmt.Errorf("statementTimeout %q: want a duration between 1ms and 1h", s)
	}
	return d, nil
}
