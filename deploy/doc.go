// Package deploy holds the demo stack's build files (Dockerfile, ingester.yaml, healthcheck/) and the test
// that validates docker-compose.yaml and provisioning/ statically: there is no Docker engine and no Grafana
// server on the development machines, so compose_test.go loads the compose file with the compose-spec Go
// loader (the library docker compose itself uses) and checks it against the repository, the ingester's
// configuration loader and the plugin's own settings and query parsers.
package deploy
