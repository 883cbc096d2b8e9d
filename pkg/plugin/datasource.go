// Package plugin is Fieldline's Grafana data-source backend: history queries on PostgreSQL/TimescaleDB (SQL)
// and InfluxDB (Flux), health checks and the discovery resources. One Datasource instance exists per data
// source; the SDK's instance manager creates it from the settings and disposes it when they change.
//
// Files by job: datasource.go (the instance's lifecycle and how errors reach the user), settings.go and
// query.go (the settings and query models, validated), querydata.go (QueryData: fan-out, dispatch, builder and
// code paths), postgres.go and influx.go (running statements on each database, within budget.go's byte
// bounds), live.go (the glue to pkg/live, which runs the streams), resources.go and health.go. Statements are
// built by pkg/sqlquery and pkg/fluxquery, frames by pkg/frames: this package runs and wires them.
package plugin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldline-iot/fieldline/internal/redact"
	"github.com/fieldline-iot/fieldline/pkg/live"
)

// PluginID is the id in plugin.json.
const PluginID = "fieldline-telemetry-datasource"

// queryConcurrency bounds the queries of one request that run at once.
const queryConcurrency = 4

// Limits of discovery (resources and variable queries).
const (
	discoveryLimit     = 1000
	discoveryMaxSeries = 20000
)

// Datasource is one data-source instance.
type Datasource struct {
	settings    Settings
	settingsErr error // invalid settings: every call answers with it (CheckHealth included)
	pg          *postgresBackend
	influx      *influxBackend
	redactor    *strings.Replacer
	resources   backend.CallResourceHandler
	uid         string       // the data source's UID: live channels are ds/<uid>/<path>
	live        *live.Engine // live streams (pkg/live); nil when the settings are invalid
	socks       secureSocks  // Private Data source Connect; zero: direct connections

	disposed  atomic.Bool
	disposeMu sync.Once
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource is the instance factory for datasource.Manage. Invalid settings do not fail the factory: the
// instance reports them from CheckHealth and every query, so the user sees which field is wrong.
func NewDatasource(ctx context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	d := &Datasource{redactor: redact.NewReplacer(s.DecryptedSecureJSONData)}
	d.resources = d.newResourceHandler()
	d.uid = s.UID
	settings, err := LoadSettings(s)
	var liveSettings live.Settings
	if err == nil {
		liveSettings, err = live.LoadSettings(s)
	}
	if err != nil {
		d.settingsErr = errors.New(d.redact(err.Error()))
		backend.Logger.FromContext(ctx).Warn("Invalid data source settings", "uid", s.UID, "error", d.settingsErr)
		return d, nil
	}
	d.settings = settings
	if d.socks, err = newSecureSocks(ctx, s); err != nil {
		d.settingsErr = errors.New(d.redact(err.Error()))
		return d, nil
	}
	b := newBudgets(settings.MaxResponseBytes, settings.MaxBytesInFlight)
	if settings.Postgres != nil {
		if d.pg, err = newPostgresBackend(settings.Postgres, settings.StatementTimeout, b, d.socks); err != nil {
			d.settingsErr = errors.New(d.redact(err.Error()))
			return d, nil
		}
	}
	if settings.Influx != nil {
		if d.influx, err = newInfluxBackend(settings.Influx, settings.StatementTimeout, b, d.socks); err != nil {
			d.settingsErr = errors.New(d.redact(err.Error()))
			return d, nil
		}
	}
	d.live = d.newLiveEngine(s, liveSettings)
	backend.Logger.FromContext(ctx).Debug("Data source instance created", "uid", s.UID,
		"postgres", settings.Postgres != nil, "influx", settings.Influx != nil, "mqtt", settings.MQTT != nil,
		"secureSocksProxy", d.socks.enabled())
	return d, nil
}

// Dispose ends the instance's goroutines and closes its pools. The SDK calls it a few seconds after the
// settings changed, while calls may still be running on this instance: those finish (the PostgreSQL pool waits
// for connections in use, bounded by the statement timeout) or fail with a clear error; new calls are
// answered "data source is being reconfigured".
func (d *Datasource) Dispose() {
	d.disposeMu.Do(func() {
		d.disposed.Store(true)
		if d.live != nil {
			d.live.Close() // ends the streams before the pools they read close
		}
		if d.influx != nil {
			d.influx.close()
		}
		if d.pg != nil {
			d.pg.close()
		}
	})
}

var errDisposed = live.ErrClosed

// errorResponse builds a per-query error: downstream errors (database, network, the user's query) are
// ErrorSourceDownstream, anything else is a plugin error. Secrets are redacted from the message.
func (d *Datasource) errorResponse(ctx context.Context, refID string, err error) backend.DataResponse {
	src := backend.ErrorSourcePlugin
	status := backend.StatusInternal
	if backend.IsDownstreamError(err) {
		src = backend.ErrorSourceDownstream
		status = backend.StatusBadRequest
		if errors.Is(err, context.DeadlineExceeded) {
			status = backend.StatusTimeout
		}
	}
	msg := err.Error()
	if !isServerReply(err) {
		msg = d.redact(msg)
	}
	backend.Logger.FromContext(ctx).Debug("Query failed", "refId", refID, "errorSource", string(src), "error", msg)
	return backend.DataResponse{Error: errors.New(msg), Status: status, ErrorSource: src}
}

// serverReply marks an error whose text is the database's own reply to a query (InfluxDB's; PostgreSQL's are
// *pgconn.PgError). Such text can quote the query, so it is never redacted: replacing exactly the strings that
// equal a secret would tell a Viewer which of the guesses it sent is the password (an oracle, measured with
// thousands of guesses per query). It carries no secret of ours: the servers never echo credentials.
type serverReply struct{ error }

func (e serverReply) Unwrap() error { return e.error }

func isServerReply(err error) bool {
	var pgErr *pgconn.PgError
	var reply serverReply
	return errors.As(err, &pgErr) || errors.As(err, &reply)
}

// redact replaces every secret value with "[redacted]" in messages the plugin makes from connection and
// configuration errors (defense in depth: no code path is meant to put a secret into an error, but driver
// messages are not under our control). Database replies to queries are not redacted (see serverReply).
func (d *Datasource) redact(s string) string { return d.redactor.Replace(s) }
