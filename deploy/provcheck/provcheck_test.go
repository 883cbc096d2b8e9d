package provcheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fieldline-iot/fieldline/pkg/plugin"
)

// provisioning is the repository's provisioning/ directory.
var provisioning = filepath.Join("..", "..", "provisioning")

func options() Options {
	return Options{
		PluginID:           "fieldline-telemetry-datasource",
		JSONDataKeys:       plugin.JSONDataKeys(),
		SecureJSONDataKeys: plugin.SecureJSONDataKeys,
	}
}

// TestRepositoryProvisioning: what the compose stack and `mage demo` give Grafana passes every check.
func TestRepositoryProvisioning(t *testing.T) {
	problems, err := Check(provisioning, options())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// copyTree copies provisioning/ into a temporary directory for a broken fixture.
func copyTree(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(provisioning, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(provisioning, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// edit replaces old by new in one file of a fixture; old must be there (so a fixture cannot go stale silently).
type edit struct{ file, old, new string }

const (
	rules   = "alerting/fieldline-rules.yaml"
	ds      = "datasources/fieldline.yaml"
	prov    = "dashboards/fieldline.yaml"
	envDash = "dashboards/fieldline/environment.json"
	picoW   = "dashboards/fieldline/pico-w-live.json"
)

// Every check, with the broken fixture that must make it fail.
var fixtures = []struct {
	name  string
	check string
	edits []edit
}{
	{"dashboardUid without panelId (the rule that stopped a real Grafana)", RuleAnnotationPair,
		[]edit{{rules, "          __dashboardUid__: fieldline-environment\n          __panelId__: \"3\"\n\n", "          __dashboardUid__: fieldline-environment\n\n"}}},
	{"panelId without dashboardUid", RuleAnnotationPair,
		[]edit{{rules, "          __dashboardUid__: fieldline-environment\n          __panelId__: \"3\"\n\n", "          __panelId__: \"3\"\n\n"}}},
	{"panelId not an integer", RuleAnnotationPair,
		[]edit{{rules, "__panelId__: \"3\"\n\n", "__panelId__: \"three\"\n\n"}}},
	{"rule uid too long", RuleUID,
		[]edit{{rules, "uid: fieldline-node-silent", "uid: fieldline-node-silent-for-two-minutes-or-more"}}},
	{"rule uid with a space", RuleUID,
		[]edit{{rules, "uid: fieldline-node-silent", "uid: fieldline node silent"}}},
	{"two rules with one uid", RuleUID,
		[]edit{{rules, "uid: fieldline-node-silent", "uid: fieldline-node-temperature-high"}}},
	{"two rules with one title in the folder", RuleTitle,
		[]edit{{rules, "title: Node silent for 2 minutes", "title: Node temperature above 35 °C (5-minute mean)"}}},
	{"condition names no refId", RuleCondition,
		[]edit{{rules, "        title: Node silent for 2 minutes\n        condition: C", "        title: Node silent for 2 minutes\n        condition: D"}}},
	{"unknown data source", RuleDatasource,
		[]edit{{rules, "            datasourceUid: fieldline\n", "            datasourceUid: fieldline-old\n"}}},
	{"relative time range from <= to", RuleTimeRange,
		[]edit{{rules, "              from: 300\n              to: 0", "              from: 0\n              to: 300"}}},
	{"interval not a multiple of 10 s", GroupInterval,
		[]edit{{rules, "    interval: 1m", "    interval: 45s"}}},
	{"group without folder", GroupInterval,
		[]edit{{rules, "    folder: Fieldline", "    folder: \"\""}}},
	{"unknown noDataState", RuleStates,
		[]edit{{rules, "noDataState: Alerting", "noDataState: Silent"}}},
	{"unknown execErrState", RuleStates,
		[]edit{{rules, "execErrState: Error\n        for: 0s                  # the 5-minute", "execErrState: Failing\n        for: 0s                  # the 5-minute"}}},
	{"for not a duration", RuleStates,
		[]edit{{rules, "for: 0s                  # the 2 minutes", "for: two minutes"}}},
	{"rule links a panel that does not exist", RulePanel,
		[]edit{{rules, "__panelId__: \"3\"\n\n", "__panelId__: \"42\"\n\n"}}},
	{"rule links a dashboard that does not exist", RulePanel,
		[]edit{{rules, "          __dashboardUid__: fieldline-environment\n          __panelId__: \"3\"\n\n", "          __dashboardUid__: fieldline-gone\n          __panelId__: \"3\"\n\n"}}},
	{"dashboard uid longer than 40", DashboardUID,
		[]edit{{picoW, `"uid": "fieldline-pico-w"`, `"uid": "fieldline-pico-w-live-temperature-and-humidity"`}}},
	{"two dashboards with one uid", DashboardUID,
		[]edit{{picoW, `"uid": "fieldline-pico-w"`, `"uid": "fieldline-environment"`}}},
	{"panel without id", PanelIDs,
		[]edit{{picoW, `"id": 4,`, ``}}},
	{"two panels with one id", PanelIDs,
		[]edit{{picoW, `"id": 4,`, `"id": 3,`}}},
	{"panel data source not provisioned", DashboardDatasource,
		[]edit{{picoW, `"uid": "fieldline"`, `"uid": "P1809F7CD0C75ACF3"`}}},
	{"data source uid with a slash", DatasourceUID,
		[]edit{{ds, "uid: fieldline\n", "uid: fieldline/main\n"}}},
	{"data source type not the plugin id", DatasourceType,
		[]edit{{ds, "type: fieldline-telemetry-datasource", "type: fieldline-datasource"}}},
	{"jsonData key the plugin does not read", DatasourceKeys,
		[]edit{{ds, "        sslMode: disable", "        sslmode: disable"}}},
	{"secureJsonData key the plugin does not read", DatasourceKeys,
		[]edit{{ds, "postgresPassword:", "postgresPasswd:"}}},
	{"dashboard provider asks for a folderUid under the rules' folder title", Folders,
		[]edit{{prov, "    folder: Fieldline\n", "    folder: Fieldline\n    folderUid: fieldline\n"}}},
}

func TestBrokenFixturesFail(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			dir := copyTree(t)
			for _, e := range f.edits {
				path := filepath.Join(dir, e.file)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), e.old) {
					t.Fatalf("fixture is stale: %s no longer contains %q", e.file, e.old)
				}
				if err := os.WriteFile(path, []byte(strings.Replace(string(b), e.old, e.new, 1)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			problems, err := Check(dir, options())
			if err != nil {
				t.Fatal(err)
			}
			var checks []string
			for _, p := range problems {
				checks = append(checks, p.Check)
				t.Log(p)
			}
			if !slices.Contains(checks, f.check) {
				t.Fatalf("check %s did not fire; got %v", f.check, problems)
			}
		})
	}
}

// TestEveryCheckHasAFixture: a check added without a broken fixture fails here.
func TestEveryCheckHasAFixture(t *testing.T) {
	all := []string{RuleAnnotationPair, RuleUID, RuleTitle, RuleCondition, RuleDatasource, RuleTimeRange, GroupInterval,
		RuleStates, RulePanel, DashboardUID, PanelIDs, DashboardDatasource, DatasourceUID, DatasourceType, DatasourceKeys, Folders}
	src, err := os.ReadFile("provcheck.go")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(src), "\" // ") + strings.Count(string(src), " = \""); n < len(all) {
		t.Fatalf("provcheck.go declares fewer checks (%d) than listed (%d)", n, len(all))
	}
	for _, c := range all {
		if !slices.ContainsFunc(fixtures, func(f struct {
			name  string
			check string
			edits []edit
		}) bool {
			return f.check == c
		}) {
			t.Errorf("check %s has no broken fixture", c)
		}
	}
}
