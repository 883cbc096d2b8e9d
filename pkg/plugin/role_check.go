package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/jackc/pgx/v5"
)

// roleRisks lists what the data source's PostgreSQL role may do beyond reading, each with the harm a Viewer's
// code query can do with it (READ ONLY transactions stop none of these). Grafana's role should be SELECT-only
// (docs/plugin.md, "Which role to give Grafana"): the compose stack and `mage demo` use fieldline_reader.
func roleRisks(ctx context.Context, tx pgx.Tx) ([]string, error) {
	var (
		user                                       string
		super, createRole                          bool
		execProgram, readFiles, writeFiles, signal bool
		ownsReadings, writesReadings               bool
	)
	err := tx.QueryRow(ctx, `
SELECT current_user, r.rolsuper, r.rolcreaterole,
       pg_has_role(current_user, 'pg_execute_server_program', 'USAGE'),
       pg_has_role(current_user, 'pg_read_server_files', 'USAGE'),
       pg_has_role(current_user, 'pg_write_server_files', 'USAGE'),
       pg_has_role(current_user, 'pg_signal_backend', 'USAGE'),
       coalesce((SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass('readings')), false),
       coalesce(has_table_privilege(to_regclass('readings'), 'INSERT, UPDATE, DELETE, TRUNCATE'), false)
  FROM pg_roles r WHERE r.rolname = current_user`).
		Scan(&user, &super, &createRole, &execProgram, &readFiles, &writeFiles, &signal, &ownsReadings, &writesReadings)
	if err != nil {
		return nil, fmt.Errorf("read the role's privileges: %w", err)
	}
	if super {
		return []string{fmt.Sprintf("role %q is a superuser: any Viewer's code query can run programs on the database host (COPY … TO PROGRAM), read its files (pg_read_file), read password hashes and end other sessions", user)}, nil
	}
	var risks []string
	if execProgram {
		risks = append(risks, "is a member of pg_execute_server_program: a Viewer's code query can run programs on the database host (COPY … TO PROGRAM)")
	}
	if readFiles || writeFiles {
		risks = append(risks, "is a member of pg_read_server_files or pg_write_server_files: a Viewer's code query can read or write files on the database host")
	}
	if signal {
		risks = append(risks, "is a member of pg_signal_backend: a Viewer's code query can end other sessions, the ingester's included (pg_terminate_backend)")
	}
	if createRole {
		risks = append(risks, "has CREATEROLE: a Viewer's code query can create roles")
	}
	if ownsReadings {
		risks = append(risks, "owns table readings: a Viewer's code query can lock it (LOCK TABLE … ACCESS EXCLUSIVE in a DO block) and stall the ingester's writes")
	} else if writesReadings {
		risks = append(risks, "may write table readings (INSERT, UPDATE, DELETE or TRUNCATE)")
	}
	for i, r := range risks {
		risks[i] = fmt.Sprintf("role %q %s", user, r)
	}
	return risks, nil
}

// roleWarning formats roleRisks for the health message ("" when the role is SELECT-only) and logs them.
func roleWarning(ctx context.Context, risks []string) string {
	if len(risks) == 0 {
		return ""
	}
	backend.Logger.FromContext(ctx).Warn("PostgreSQL role has more than SELECT", "risks", strings.Join(risks, "; "))
	return "; Warning: " + strings.Join(risks, "; ") + ". Give Grafana a SELECT-only role such as fieldline_reader (docs/plugin.md)"
}
